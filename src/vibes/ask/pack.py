"""Packing passages into the prompt: numbered in rank order, within a token budget.

The sources block is the passages one after another, each headed by a line
``[N] ID (DOCUMENT, lines A-B)`` and separated by a blank line. Its size, counted with the
chat model's ``count_tokens`` (or :func:`approximate_tokens` without a model), never
exceeds the budget. The hits come first: the neighbouring chunks around them are added
back only where room is left once every passage that fits is in. The first passage that
does not fit is cut (its end replaced by :data:`CUT_MARK`) and is the last one sent; it is
dropped only when not even :data:`MIN_CUT_TOKENS` of its text would fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import VibesError
from .retrieve import Passage

#: Tokens of the budget when the model's context length is unknown (or there is no
#: model, as with --sources-only): room for 8 chunks of about 300 tokens and their
#: neighbours, inside the smallest context windows in use (4,096 tokens) with the
#: instructions and the answer.
DEFAULT_BUDGET = 2500
#: Room kept for the answer when the budget is fitted to the model's context (at most a
#: quarter of the context), and for the instructions' wrapping beyond what is counted.
ANSWER_TOKENS = 1024
MARGIN_TOKENS = 32
#: The fewest tokens of a passage's text worth sending when it has to be cut.
MIN_CUT_TOKENS = 8
CUT_MARK = " [...]"
SEPARATOR = "\n\n"

TokenCounter = Callable[[str], int]


def approximate_tokens(text: str) -> int:
    """About 4 characters a token: the count used when there is no model to ask."""
    return math.ceil(len(text) / 4)


@dataclass
class Source:
    """One numbered source: a passage as sent to the model (possibly cut)."""

    n: int
    id: str
    document: str | None
    lines: tuple[int, int] | None
    score: float
    text: str
    #: The ids of the chunks its text holds, in document order.
    chunks: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    #: Whether the text was cut to fit the budget.
    truncated: bool = False
    #: The vector similarity of its best hit, when known.
    relevance: float | None = None

    @property
    def label(self) -> str:
        """``doc.md#3 (doc.md, lines 10-24)``: where to find it."""
        where = []
        if self.document is not None:
            where.append(self.document)
        if self.lines is not None:
            first, last = self.lines
            where.append(f"line {first}" if first == last else f"lines {first}-{last}")
        return f"{self.id} ({', '.join(where)})" if where else self.id

    def render(self) -> str:
        """The source as the prompt holds it."""
        return f"[{self.n}] {self.label}\n{self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "id": self.id,
            "document": self.document,
            "lines": list(self.lines) if self.lines is not None else None,
            "score": self.score,
            "text": self.text,
            "chunks": list(self.chunks),
            "truncated": self.truncated,
        }


@dataclass
class Packed:
    sources: list[Source]
    #: The sources block (what ``{sources}`` becomes) and its size in tokens.
    text: str
    tokens: int
    budget: int
    #: Passages found but left out for want of room.
    left_out: int = 0


def render(sources: Sequence[Source]) -> str:
    return SEPARATOR.join(source.render() for source in sources)


def pack(
    passages: Sequence[Passage],
    budget: int,
    count_tokens: TokenCounter = approximate_tokens,
) -> Packed:
    """Number ``passages`` [1..k] in order and fit as many as ``budget`` tokens hold.

    First the hits of each passage (without the neighbouring chunks around them), in
    order, until one does not fit: that one is cut to fit and is the last. Then, while
    there is room, each passage in order gets its neighbours back (those that fit)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise VibesError(f"The budget must be a positive number of tokens, not {budget!r}")
    sources: list[Source] = []
    cut = False
    for number, passage in enumerate(passages, 1):
        core = _source(number, passage.trimmed())
        if count_tokens(render([*sources, core])) <= budget:
            sources.append(core)
            continue
        shorter = _cut(sources, number, passage.trimmed(), budget, count_tokens)
        if shorter is not None:
            sources.append(shorter)
        cut = True
        break
    if not sources and passages:
        raise VibesError(f"A budget of {budget} tokens holds no passage: give a larger --budget")
    if not cut:
        for position, passage in enumerate(passages[: len(sources)]):
            whole = _source(position + 1, passage)
            if whole.chunks == sources[position].chunks:
                continue
            widened = [*sources[:position], whole, *sources[position + 1 :]]
            if count_tokens(render(widened)) <= budget:
                sources = widened
    text = render(sources)
    return Packed(
        sources, text, count_tokens(text) if sources else 0, budget, len(passages) - len(sources)
    )


def _source(number: int, passage: Passage) -> Source:
    return Source(
        number,
        passage.id,
        passage.document,
        passage.lines,
        passage.score,
        passage.text.strip(),
        [piece.id for piece in passage.pieces if piece.text],
        passage.metadata,
        relevance=passage.relevance,
    )


_WORD_END = re.compile(r"\s+")


def _cut(
    before: list[Source], number: int, passage: Passage, budget: int, count_tokens: TokenCounter
) -> Source | None:
    """``passage`` as source ``number`` with its text cut at a word boundary to the
    longest that fits after ``before``, or None when less than :data:`MIN_CUT_TOKENS` of
    it would. Its chunks and lines are then those the cut text reaches into."""
    source = _source(number, passage)
    text = source.text
    # Word ends, where the text may be cut.
    ends = [m.start() for m in _WORD_END.finditer(text)]
    if not ends:
        ends = list(range(1, len(text)))  # one long word: cut anywhere

    def fits(end: int) -> bool:
        candidate = _with_text(source, text[:end].rstrip() + CUT_MARK)
        return count_tokens(render([*before, candidate])) <= budget

    low, high = 0, len(ends) - 1
    best = None
    while low <= high:
        middle = (low + high) // 2
        if fits(ends[middle]):
            best, low = ends[middle], middle + 1
        else:
            high = middle - 1
    if best is None or count_tokens(text[:best]) < MIN_CUT_TOKENS:
        return None
    cut = _with_text(source, text[:best].rstrip() + CUT_MARK)
    cut.truncated = True
    # The chunks the kept text reaches into (the passage joins them with newlines, and
    # the source's text is the passage's stripped).
    reached = []
    start = -(len(passage.text) - len(passage.text.lstrip()))
    for piece in passage.pieces:
        if not piece.text:
            continue
        if start >= best:
            break
        reached.append(piece)
        start += len(piece.text) + 1
    if reached:
        cut.chunks = [piece.id for piece in reached]
        spans = [piece.lines for piece in reached]
        if all(span is not None for span in spans):
            cut.lines = (min(s[0] for s in spans if s), max(s[1] for s in spans if s))
    return cut


def _with_text(source: Source, text: str) -> Source:
    return Source(
        source.n,
        source.id,
        source.document,
        source.lines,
        source.score,
        text,
        source.chunks,
        source.metadata,
        source.truncated,
        source.relevance,
    )

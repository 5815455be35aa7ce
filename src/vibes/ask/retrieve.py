"""Retrieval for a question: the best chunks, their neighbours, merged into passages.

One search (:meth:`Collection.search`, hybrid by default) finds the hits; each chunk hit
brings the chunks around it (``context``, default 1 on each side); hits and neighbours of
one document that touch or overlap become one passage, in the rank of its best hit. The
same chunk is never sent twice, nor the same text.

Relevance: whether a hit is close enough to the question to be worth asking a model
about is judged on its *vector* similarity (the search score in vector mode, the vector
leg's score in hybrid mode), since fused and BM25 scores say how hits rank, not how close
they are. See :data:`DEFAULT_MIN_SCORE`.
"""

from __future__ import annotations

import warnings as python_warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..collection import Collection
    from ..items import Match

#: The default relevance threshold for collections compared by cosine similarity: a
#: question whose best hit scores below it is not sent to a model. Measured with the
#: default model (all-MiniLM-L6-v2): unrelated questions ("What is the capital of
#: France?", "How do I bake sourdough bread?") against the markdown chunks of this
#: project's README scored 0.05-0.18 (median 0.12); questions it answers scored 0.31-0.69,
#: and vague ones it answers ("Does it work offline?", "How do I contribute?") 0.14-0.20.
#: Against one-line texts (the standard library's docstring summaries) unrelated questions
#: score higher, 0.17-0.40. 0.15 refuses most clearly unrelated questions while refusing
#: few answerable ones: a wrong refusal costs an answer, a wrong pass only a model call
#: (whose instructions say to answer "I don't know"). Other models score otherwise (OpenAI's
#: ada-002 gives unrelated texts about 0.7): set ``min_score`` for them.
DEFAULT_MIN_SCORE = 0.15
#: Neighbouring chunks fetched around each chunk hit, on each side.
DEFAULT_CONTEXT = 1
DEFAULT_N = 8
DEFAULT_MODE = "hybrid"


class AskWarning(UserWarning):
    """Something the user of an answer should know: a citation of no source, a budget
    larger than the model's context, hits without stored text."""


@dataclass
class Piece:
    """One stored chunk (or item) of a passage."""

    id: str
    text: str | None
    lines: tuple[int, int] | None = None
    #: Position in its document (0-based); None for an item that is not a chunk.
    index: int | None = None
    #: A search hit (not only a neighbour), and its search score.
    hit: bool = False
    score: float | None = None


@dataclass
class Passage:
    """Hits of one document that touch, with their neighbours, or one item on its own."""

    id: str
    score: float
    document: str | None
    metadata: dict[str, Any] | None
    pieces: list[Piece]
    #: The best vector similarity among its hits (None when none has one).
    relevance: float | None = None
    #: The rank (0-based) of its best hit among the search results.
    rank: int = 0
    hits: list[str] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.pieces[0].index if self.pieces[0].index is not None else -1

    @property
    def last(self) -> int:
        return self.pieces[-1].index if self.pieces[-1].index is not None else -1

    @property
    def text(self) -> str:
        return "\n".join(piece.text for piece in self.pieces if piece.text)

    @property
    def lines(self) -> tuple[int, int] | None:
        spans = [piece.lines for piece in self.pieces if piece.text]
        if not spans or any(span is None for span in spans):
            return None
        return (min(s[0] for s in spans if s), max(s[1] for s in spans if s))

    def touches(self, pieces: list[Piece]) -> bool:
        """Whether a run of chunks of the same document overlaps or adjoins this one."""
        first, last = pieces[0].index, pieces[-1].index
        if first is None or last is None or self.pieces[0].index is None:
            return False
        return first <= self.last + 1 and last >= self.first - 1

    def absorb(self, pieces: Iterable[Piece]) -> None:
        """Add chunks (a hit's run, or another passage's), keeping document order and the
        best score of any chunk held twice."""
        by_id = {piece.id: piece for piece in self.pieces}
        for piece in pieces:
            held = by_id.get(piece.id)
            if held is None:
                by_id[piece.id] = piece
            elif piece.hit and not held.hit:
                held.hit, held.score = True, piece.score
        self.pieces = sorted(by_id.values(), key=lambda p: p.index if p.index is not None else -1)

    def note_relevance(self, value: float | None) -> None:
        """Keep ``value`` (a hit's vector similarity) as the relevance when it is higher."""
        if value is not None and (self.relevance is None or value > self.relevance):
            self.relevance = value

    def trimmed(self) -> Passage:
        """The passage without its neighbours outside the first and last hit."""
        hit_positions = [i for i, piece in enumerate(self.pieces) if piece.hit]
        if not hit_positions:
            return self
        pieces = self.pieces[hit_positions[0] : hit_positions[-1] + 1]
        return Passage(
            self.id,
            self.score,
            self.document,
            self.metadata,
            pieces,
            self.relevance,
            self.rank,
            self.hits,
        )


@dataclass
class Retrieved:
    """What the search found for a question, as passages in rank order."""

    passages: list[Passage]
    #: The best vector similarity of any hit (None when no hit had one, or no hit).
    best: float | None
    #: The threshold applied (None: none).
    min_score: float | None
    #: Hits found before the threshold, and the search's warnings plus our own.
    found: int
    warnings: list[str]


def relevance(match: Match, mode: str) -> float | None:
    """How close a hit is to the question, by vector similarity where the search says it:
    the vector leg's score when the hit carries legs (hybrid, re-ranked), else its score
    (vector mode, a hybrid search that fell back to vectors, or BM25 in text mode)."""
    if match.legs:
        leg = match.legs.get("vector")
        return float(leg["score"]) if leg else None
    return float(match.score)


def default_min_score(collection: Collection, mode: str) -> float | None:
    """:data:`DEFAULT_MIN_SCORE` for cosine collections searched by vector or hybrid;
    None (no threshold) for text mode (BM25 scores have no fixed scale) and for dot or
    euclidean collections."""
    if mode == "text" or collection.distance != "cosine":
        return None
    return DEFAULT_MIN_SCORE


def retrieve(
    collection: Collection,
    question: str,
    *,
    n: int = DEFAULT_N,
    mode: str = DEFAULT_MODE,
    context: int = DEFAULT_CONTEXT,
    min_score: float | None = None,
    **search_options: Any,
) -> Retrieved:
    """Search ``collection`` for ``question`` and make passages of the hits.

    ``min_score`` None means the default for the collection and mode
    (:func:`default_min_score`); pass a negative number to keep every hit. In vector mode,
    hits below it are left out; in hybrid mode the threshold only decides whether the best
    hit is close enough, since words found by the text leg count too. ``search_options``
    go to :meth:`Collection.search` (``filters``, ``prefix``, ``where``, ``exact``,
    ``rerank``, ...)."""
    threshold = default_min_score(collection, mode) if min_score is None else min_score
    results = collection.search(question, n, mode=mode, context=context, **search_options)
    warnings = list(results.warnings)
    scored = [(match, relevance(match, mode)) for match in results]
    known = [value for _, value in scored if value is not None]
    best = max(known) if known else None
    if threshold is not None and best is not None and best < threshold:
        return Retrieved([], best, threshold, len(results), warnings)
    if threshold is not None and mode == "vector":
        scored = [(m, v) for m, v in scored if v is None or v >= threshold]
    passages = _passages(collection, scored)
    without = sum(1 for passage in passages if not passage.text.strip())
    if without:
        message = (
            f"{without} of the hits {'has' if without == 1 else 'have'} no stored text to "
            f"send (embed with --store to keep it); {'it was' if without == 1 else 'they were'} "
            "left out"
        )
        warnings.append(message)
        python_warnings.warn(message, AskWarning, stacklevel=3)
    kept: list[Passage] = []
    seen: set[str] = set()
    for passage in passages:
        text = passage.text.strip()
        if text and text not in seen:
            seen.add(text)
            kept.append(passage)
    return Retrieved(kept, best, threshold, len(results), warnings)


def _passages(collection: Collection, scored: list[tuple[Match, float | None]]) -> list[Passage]:
    """Passages in the rank of their best hit: runs of touching chunks merged."""
    ids = {match.id for match, _ in scored}
    for match, _ in scored:
        for neighbour in match.context or ():
            ids.add(neighbour["id"])
    records = collection.database.store.chunk_records(collection.id, sorted(ids))
    passages: list[Passage] = []
    for rank, (match, value) in enumerate(scored):
        record = records.get(match.id)
        if match.document is None or record is None:
            piece = Piece(match.id, match.content, match.lines, None, True, match.score)
            passages.append(_passage(match, [piece], value, rank))
            continue
        run = [
            Piece(
                neighbour["id"],
                neighbour.get("content"),
                _lines(neighbour.get("lines")),
                records[neighbour["id"]].index if neighbour["id"] in records else None,
                neighbour["id"] == match.id,
                match.score if neighbour["id"] == match.id else None,
            )
            for neighbour in (match.context or [])
        ]
        if not any(piece.id == match.id for piece in run):
            run.append(Piece(match.id, match.content, match.lines, record.index, True, match.score))
        run = [piece for piece in run if piece.index is not None]
        run.sort(key=lambda piece: piece.index if piece.index is not None else -1)
        joined = next(
            (p for p in passages if p.document == match.document and p.touches(run)), None
        )
        if joined is None:
            passages.append(_passage(match, run, value, rank))
            continue
        joined.absorb(run)
        joined.hits.append(match.id)
        joined.note_relevance(value)
        # The run may now bridge the gap to a later passage of the same document.
        for other in [p for p in passages if p is not joined and p.document == joined.document]:
            if other.touches(joined.pieces) or joined.touches(other.pieces):
                joined.absorb(other.pieces)
                joined.hits.extend(other.hits)
                joined.note_relevance(other.relevance)
                passages.remove(other)
    return passages


def _passage(match: Match, pieces: list[Piece], relevance: float | None, rank: int) -> Passage:
    """A new passage of the hit ``match`` at ``rank``, holding ``pieces``."""
    return Passage(
        match.id,
        match.score,
        match.document,
        match.metadata,
        pieces,
        relevance,
        rank,
        [match.id],
    )


def _lines(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and None not in value:
        return (int(value[0]), int(value[1]))
    return None

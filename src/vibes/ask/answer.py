"""Asking a question of a collection: retrieve, pack, prompt, call the chat model.

:func:`prepare` does everything but the call (what ``--sources-only`` shows);
:func:`ask` makes the call too, whole or streamed.
"""

from __future__ import annotations

import math
import warnings as python_warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from ..errors import UnknownLLMError, VibesError
from .pack import (
    ANSWER_TOKENS,
    DEFAULT_BUDGET,
    MARGIN_TOKENS,
    Source,
    TokenCounter,
    approximate_tokens,
    pack,
)
from .prompt import citations, fill, load_template, messages
from .retrieve import DEFAULT_CONTEXT, DEFAULT_MODE, DEFAULT_N, AskWarning, retrieve

if TYPE_CHECKING:
    from ..collection import Collection
    from ..llms.base import ChatModel

#: Tokens each message adds beyond its text (roles, separators), for the budget.
MESSAGE_OVERHEAD = 4
#: The fewest tokens the budget fitted to a model's context may leave for sources.
MIN_FITTED_BUDGET = 64


@dataclass
class Prepared:
    """What would be sent: the sources, the messages, and how they were chosen. When
    ``reason`` is set, nothing is to be sent (no passage is close enough to the question)."""

    question: str
    collection: str
    sources: list[Source]
    messages: list[dict[str, str]]
    model: ChatModel | None
    #: The budget for the sources block, and the tokens it took.
    budget: int
    tokens: int
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    #: The best hit's vector similarity and the threshold it was held to.
    best_score: float | None = None
    min_score: float | None = None

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model is not None else None


@dataclass
class Answer:
    """A question's answer and the sources it was given. ``answer`` is None when no model
    was asked (``reason`` says why: nothing relevant was found, or only the sources were
    wanted)."""

    question: str
    answer: str | None
    sources: list[Source]
    model: str | None = None
    usage: dict[str, int] | None = None
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    #: The messages sent to the model (or that would have been).
    messages: list[dict[str, str]] = field(default_factory=list)
    budget: int | None = None
    tokens: int = 0
    best_score: float | None = None
    min_score: float | None = None
    finish_reason: str | None = None

    @property
    def citations(self) -> list[int]:
        """The source numbers the answer cites, in the order first cited."""
        return citations(self.answer or "")

    @property
    def cited(self) -> list[Source]:
        """The sources the answer cites, in the order first cited."""
        by_number = {source.n: source for source in self.sources}
        return [by_number[n] for n in self.citations if n in by_number]

    def __str__(self) -> str:
        return self.answer or ""

    def turn(self) -> dict[str, Any]:
        """This question and answer as a conversation turn (for ``history=``)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "model": self.model,
            "sources": [{"n": s.n, "id": s.id} for s in self.sources],
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"answer", "sources", "model", "usage", "question", "warnings"}``, plus
        ``"reason"`` and ``"best_score"`` when no model was asked. Each source is
        ``{"n", "id", "document", "lines", "score", "text", "chunks", "truncated",
        "cited"}``."""
        cited = set(self.citations)
        data: dict[str, Any] = {
            "answer": self.answer,
            "sources": [
                {**source.to_dict(), "cited": source.n in cited} for source in self.sources
            ],
            "model": self.model,
            "usage": self.usage,
            "question": self.question,
            "warnings": list(self.warnings),
        }
        if self.answer is None:
            data["reason"] = self.reason
            data["best_score"] = self.best_score
        return data


def resolve_llm(llm: ChatModel | str | None, *, required: bool = True) -> ChatModel | None:
    """The chat model named (or given); the default LLM for None. Without ``required``,
    no default chosen gives None instead of an error (for sources only)."""
    if llm is not None and not isinstance(llm, str):
        return llm
    from ..llms import get_llm

    try:
        return get_llm(llm)
    except UnknownLLMError:
        if required or llm is not None:
            raise
        return None


def prepare(
    collection: Collection,
    question: str,
    *,
    llm: ChatModel | str | None = None,
    n: int = DEFAULT_N,
    mode: str = DEFAULT_MODE,
    budget: int | None = None,
    system: str | None = None,
    template: str | None = None,
    min_score: float | None = None,
    context: int = DEFAULT_CONTEXT,
    history: Sequence[dict[str, Any]] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    model_required: bool = False,
    **search_options: Any,
) -> Prepared:
    """Retrieve and pack the sources for ``question`` and build the messages, without
    calling a model. See :func:`ask` for the options; ``model_required`` makes a missing
    default LLM an error (else the budget is counted at ~4 characters a token)."""
    if not isinstance(question, str) or not question.strip():
        raise VibesError("No question to ask: the question is empty")
    question = question.strip()
    for name, value in (("minimum score", min_score), ("temperature", temperature)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise VibesError(f"The {name} must be a finite number, not {value!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise VibesError(f"The budget must be a positive number of tokens, not {budget!r}")
    if budget is not None and budget < 1:
        raise VibesError(f"The budget must be a positive number of tokens, not {budget}")
    template = load_template(template)
    model = resolve_llm(llm, required=model_required)
    count: TokenCounter = model.count_tokens if model is not None else approximate_tokens
    turns = list(history or [])
    notes: list[str] = []
    without_sources = messages(system, fill(template, "", question), turns)
    fixed = sum(count(m["content"]) + MESSAGE_OVERHEAD for m in without_sources)
    if budget is None:
        budget = _fitted_budget(model, fixed, max_tokens, bool(turns))
    elif model is not None and model.context_length is not None:
        room = model.context_length - fixed - budget
        if room < (max_tokens or 1):
            _note(
                notes,
                f"A budget of {budget} tokens with the instructions and question leaves "
                f"{max(room, 0)} tokens of LLM {model.model_id}'s context of "
                f"{model.context_length} for the answer",
            )
    found = retrieve(
        collection,
        question,
        n=n,
        mode=mode,
        context=context,
        min_score=min_score,
        **search_options,
    )
    notes[:0] = found.warnings
    prepared = Prepared(
        question,
        collection.name,
        [],
        [],
        model,
        budget,
        0,
        notes,
        best_score=found.best,
        min_score=found.min_score,
    )
    if not found.passages:
        prepared.reason = NOT_ASKING % nothing_relevant(
            collection.name, found.best, found.min_score, found.found
        )
        return prepared
    packed = pack(found.passages, budget, count)
    prepared.sources, prepared.tokens = packed.sources, packed.tokens
    prepared.messages = messages(system, fill(template, packed.text, question), turns)
    return prepared


def _note(notes: list[str], message: str) -> None:
    if message not in notes:
        notes.append(message)
        python_warnings.warn(message, AskWarning, stacklevel=4)


def _fitted_budget(
    model: ChatModel | None, fixed: int, max_tokens: int | None, history: bool
) -> int:
    """The budget for the sources: the model's context less the answer's room
    (``max_tokens``, else :data:`ANSWER_TOKENS` but at most a quarter of the context), the
    rest of the prompt and a margin; :data:`DEFAULT_BUDGET` when the context is unknown."""
    if model is None or not model.context_length:
        return DEFAULT_BUDGET
    context = model.context_length
    answer = max_tokens or min(ANSWER_TOKENS, context // 4)
    budget = context - answer - fixed - MARGIN_TOKENS
    if budget < MIN_FITTED_BUDGET:
        what = (
            "instructions, question and earlier turns" if history else "instructions and question"
        )
        raise VibesError(
            f"LLM {model.model_id}'s context of {context} tokens leaves no room for sources "
            f"after the {what} ({fixed} tokens) and the answer ({answer} tokens): give a "
            f"--budget{', or ask without --continue' if history else ''}"
        )
    return budget


NOT_ASKING = "%s; not asking the model"


def nothing_relevant(
    collection: str, best: float | None, threshold: float | None, found: int
) -> str:
    if found == 0:
        return f"No passage of {collection} matches the question"
    if best is not None and threshold is not None and best < threshold:
        # Two decimals, or as many more as it takes to show the score below the threshold.
        digits = 2
        while digits < 6 and round(best, digits) >= threshold:
            digits += 1
        return (
            f"No passage of {collection} is close enough to the question (best score "
            f"{best:.{digits}f} < {threshold:g})"
        )
    return (
        f"No passage of {collection} found for the question has stored text to send "
        "(embed with --store to keep it)"
    )


class StreamingAnswer:
    """An answer as it arrives: iterate over it for the pieces of text; ``sources``,
    ``model`` and ``messages`` are there at once, :meth:`result` gives the whole
    :class:`Answer` (reading what is left)."""

    def __init__(
        self, prepared: Prepared, pieces: Iterator[str] | None, reason: str | None
    ) -> None:
        self.prepared = prepared
        self._pieces = pieces
        self._parts: list[str] = []
        self._answer: Answer | None = None
        self.reason = reason

    @property
    def question(self) -> str:
        return self.prepared.question

    @property
    def sources(self) -> list[Source]:
        return self.prepared.sources

    @property
    def model(self) -> str | None:
        return self.prepared.model_id

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.prepared.messages

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        if self._pieces is not None:
            pieces, self._pieces = self._pieces, None
            for piece in pieces:
                self._parts.append(piece)
                yield piece
            self._answer = _finish(self.prepared, "".join(self._parts))

    def result(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:
            self._answer = _finish(self.prepared, None, self.reason)
        return self._answer


def _finish(prepared: Prepared, text: str | None, reason: str | None = None) -> Answer:
    """The answer with its usage, and warnings for citations of no source."""
    model = prepared.model
    notes = list(prepared.warnings)
    answer = Answer(
        prepared.question,
        text,
        prepared.sources,
        prepared.model_id,
        _usage(model) if text is not None else None,
        notes,
        reason,
        prepared.messages,
        prepared.budget,
        prepared.tokens,
        prepared.best_score,
        prepared.min_score,
        model.last_finish_reason if text is not None and model is not None else None,
    )
    if text is not None:
        unknown = [n for n in answer.citations if not 1 <= n <= len(prepared.sources)]
        if unknown:
            shown = ", ".join(f"[{n}]" for n in unknown)
            count = len(prepared.sources)
            _note(
                notes,
                f"The answer cites {shown}, but there {'is' if count == 1 else 'are'} only "
                f"{count} source{'' if count == 1 else 's'}",
            )
        if answer.finish_reason == "length":
            _note(notes, "The answer was cut off at its maximum length (--max-tokens)")
    return answer


def _usage(model: ChatModel | None) -> dict[str, int] | None:
    usage = model.last_usage if model is not None else None
    return {key: int(value) for key, value in usage.items()} if usage else None  # type: ignore[call-overload]


SOURCES_ONLY = "Only the sources were asked for; no model was called"


@overload
def ask(
    collection: Collection,
    question: str,
    *,
    stream: Literal[True],
    **options: Any,
) -> StreamingAnswer: ...


@overload
def ask(
    collection: Collection,
    question: str,
    *,
    stream: Literal[False] | Callable[[str], Any] = False,
    **options: Any,
) -> Answer: ...


def ask(
    collection: Collection,
    question: str,
    *,
    stream: bool | Callable[[str], Any] = False,
    sources_only: bool = False,
    **options: Any,
) -> Answer | StreamingAnswer:
    """Answer ``question`` from the passages of ``collection`` that match it best.

    - ``llm``: a chat model or its name (``vibes llms``); None for the default LLM.
    - ``n`` (8): hits to retrieve; ``mode``: ``"hybrid"`` (words and meaning, the
      default; vectors alone, with a warning, when the collection has no full-text
      index), ``"vector"`` or ``"text"``; ``context`` (1): neighbouring chunks around each
      chunk hit, merged with it into one passage; other ``search_options`` go to
      :meth:`Collection.search` (``filters``, ``prefix``, ``where``, ``exact``,
      ``rerank``...).
    - ``min_score``: when no hit's vector similarity reaches it, no model is asked and the
      answer is None with a ``reason`` (default 0.15 for cosine collections in vector and
      hybrid mode, none in text mode; see :data:`vibes.ask.retrieve.DEFAULT_MIN_SCORE`).
    - ``budget``: tokens the sources may take (default: the model's context less room for
      the answer and the rest of the prompt; 2,500 when unknown); the last passage is cut
      to fit rather than overflow.
    - ``system``: instructions replacing the default ones; ``template``: the user message,
      a text (or a file) with ``{sources}`` and ``{question}``.
    - ``stream``: False returns the :class:`Answer` when complete; a function is called
      with each piece of text as it arrives (and the Answer returned); True returns a
      :class:`StreamingAnswer` to iterate over.
    - ``history``: earlier turns (``Answer.turn()`` dicts) sent before the question.
    - ``sources_only``: retrieve and pack but call no model (``answer`` None).
    - ``max_tokens``, ``temperature``: passed to the model.

    Every option but ``stream`` and ``sources_only`` is :func:`prepare`'s.
    """
    prepared = prepare(collection, question, model_required=not sources_only, **options)
    reason = prepared.reason or (SOURCES_ONLY if sources_only else None)
    pieces: Iterator[str] | None = None
    if reason is None:
        model = prepared.model
        assert model is not None
        max_tokens, temperature = options.get("max_tokens"), options.get("temperature")
        if stream is False:
            text = model.complete(prepared.messages, max_tokens=max_tokens, temperature=temperature)
            pieces = iter([text] if text else [])
        else:
            pieces = model.stream(prepared.messages, max_tokens=max_tokens, temperature=temperature)
    streaming = StreamingAnswer(prepared, pieces, reason)
    if stream is True:
        return streaming
    if callable(stream):
        for piece in streaming:
            stream(piece)
    return streaming.result()

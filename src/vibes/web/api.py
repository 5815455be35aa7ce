"""The search API behind ``/-/vibes/COLLECTION/search.json`` and the search page: a query
string checked and turned into one call of :meth:`vibes.Collection.search`, and every
error mapped to an HTTP status with a one-line message. Framework-free: a server hands it
the query string's values and writes what it returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    DatabaseOpenError,
    ItemNotFoundError,
    UnknownCollectionError,
    VibesError,
)
from .batching import Batcher, options_key

if TYPE_CHECKING:
    from ..collection import Collection
    from ..items import Query, SearchResults

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_RESULTS",
    "ApiError",
    "AskRequest",
    "SearchRequest",
    "error_for",
    "parse_ask",
    "parse_search",
    "results_json",
    "run_ask",
    "run_search",
]

#: The most results one request may ask for.
MAX_RESULTS = 1_000
#: The longest query text (characters) or other parameter value a request may send.
MAX_QUERY_CHARS = 20_000
#: The most ``filter`` parameters one request may send.
MAX_FILTERS = 32

Params = Mapping[str, Sequence[str]]


class ApiError(Exception):
    """A request that cannot be answered: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON, in the shape Datasette gives its own errors."""
        return {"ok": False, "error": self.message, "status": self.status}


def error_for(error: BaseException) -> ApiError:
    """The HTTP error a failure of a search maps to: what the user named does not exist
    (404), the request cannot be answered as asked (400), or a fault of the server (500,
    named but never a traceback)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, (UnknownCollectionError, ItemNotFoundError)):
        return ApiError(404, str(error))
    if isinstance(error, DatabaseOpenError):
        return ApiError(503, str(error))
    if isinstance(error, VibesError):
        return ApiError(400, str(error))
    return ApiError(500, f"Internal error: {type(error).__name__}")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("", "0", "false", "off", "no"):
        return False
    raise ApiError(400, f"{name} must be true or false (1/0), not {value[:40]!r}")


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ApiError(400, f"{name} must be a whole number, not {value[:40]!r}") from None
        if not low <= number <= high:
            raise ApiError(400, f"{name} must be from {low} to {high}, not {number}")
        return number

    return parse


def _number(low: float, high: float) -> Callable[[str, str], float]:
    def parse(name: str, value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ApiError(400, f"{name} must be a number, not {value[:40]!r}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ApiError(400, f"{name} must be a number from {low:g} to {high:g}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise ApiError(400, f"{name} must be one of {', '.join(choices)}, not {value[:40]!r}")
        return value

    return parse


def _text(name: str, value: str) -> str:
    return value


def _reranker(name: str, value: str) -> str:
    """A registered re-ranker's name: over the web, not a directory of the server's."""
    from ..models.registrations import find_reranker, reranker_registrations

    if find_reranker(value) is None:
        aliases = [entry["alias"] for entry in reranker_registrations()]
        raise ApiError(
            400,
            f"{name} takes a registered re-ranker's name here, not {value[:80]!r} "
            f"({'registered: ' + ', '.join(aliases) if aliases else 'none is registered'})",
        )
    return value


#: Each parameter of a search, as ``vibes similar`` names its option (``-c`` is ``q``),
#: and how its value is read. ``filter`` may be given many times, the others once.
PARAMETERS: dict[str, Callable[[str, str], Any]] = {
    "q": _text,
    "id": _text,
    "expr": _text,
    "keep_terms": _flag,
    "n": _integer(1, MAX_RESULTS),
    "mode": _choice("vector", "text", "hybrid"),
    "filter": _text,
    "prefix": _text,
    "where": _text,
    "min_score": _number(-1e9, 1e9),
    "exact": _flag,
    "documents": _flag,
    "document_score": _choice("max", "mean", "sum"),
    "context": _integer(0, 50),
    "fusion": _choice("weighted", "rrf"),
    "weight": _number(0.0, 1.0),
    "depth": _integer(1, 10_000),
    "fts_syntax": _flag,
    "snippets": _flag,
    "rerank": _reranker,
    "rerank_depth": _integer(1, MAX_RESULTS),
    "database": _text,
}


#: The parameters of a question (``vibes ask``'s options; ``q`` is the question). No
#: ``system`` or ``template``: a template may name a file, and the server's files are not
#: the caller's to read.
ASK_PARAMETERS: dict[str, Callable[[str, str], Any]] = {
    "q": _text,
    "llm": _text,
    "n": _integer(1, 100),
    "mode": _choice("vector", "text", "hybrid"),
    "filter": _text,
    "prefix": _text,
    "where": _text,
    "min_score": _number(-1e9, 1e9),
    "context": _integer(0, 20),
    "exact": _flag,
    "rerank": _reranker,
    "budget": _integer(1, 1_000_000),
    "max_tokens": _integer(1, 1_000_000),
    "temperature": _number(0.0, 2.0),
    "sources_only": _flag,
    "stream": _flag,
    "database": _text,
}


@dataclass
class SearchRequest:
    """A checked search: what to look for, how many, and the options of
    :meth:`~vibes.Collection.search`."""

    #: The text (``q``) or the item (``id``) to search by; None with ``expression``, or
    #: when the request named neither (a search page before its first search).
    query: Query | None
    expression: str | None = None
    keep_terms: bool = False
    n: int = 10
    options: dict[str, Any] = field(default_factory=dict)
    #: ``array`` (the hits, as ``vibes similar`` prints them) or ``object`` (with the
    #: collection, the warnings and the request's options).
    shape: str = "array"
    #: The Datasette database the request names, if any.
    database: str | None = None

    @property
    def empty(self) -> bool:
        return self.query is None and self.expression is None


def _single(params: Params, name: str) -> str | None:
    values = list(params.get(name, ()))
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, f"{name} was given {len(values)} times: give it once")
    if len(values[0]) > MAX_QUERY_CHARS:
        raise ApiError(
            400, f"{name} is too long ({len(values[0]):,} characters, at most {MAX_QUERY_CHARS:,})"
        )
    if "\x00" in values[0]:
        raise ApiError(400, f"{name} holds a NUL character")
    return values[0]


def _read(
    params: Params, parameters: dict[str, Callable[[str, str], Any]], allow_where: bool
) -> tuple[dict[str, Any], list[str]]:
    """The values of ``parameters`` in ``params``, checked, and the filters."""
    unknown = sorted(name for name in params if name not in parameters and name[:1] != "_")
    if unknown:
        raise ApiError(
            400, f"Unknown parameter {unknown[0][:40]!r} (known: {', '.join(parameters)})"
        )
    values: dict[str, Any] = {}
    for name, parse in parameters.items():
        if name == "filter":
            continue
        value = _single(params, name)
        if value is not None:
            values[name] = parse(name, value)
    filters = list(params.get("filter", ()))
    if len(filters) > MAX_FILTERS:
        raise ApiError(400, f"At most {MAX_FILTERS} filters, not {len(filters)}")
    for expression in filters:
        if len(expression) > MAX_QUERY_CHARS or "\x00" in expression:
            raise ApiError(400, "A filter is too long or holds a NUL character")
    if "where" in values and not allow_where:
        raise ApiError(403, "where needs permission to run SQL on this database")
    return values, filters


def parse_search(params: Params, *, allow_where: bool = True) -> SearchRequest:
    """Check the query string of a search and turn it into a :class:`SearchRequest`.
    Raises :class:`ApiError` (400, or 403 for ``where`` when ``allow_where`` is false)
    naming the first problem. Names starting with ``_`` are the server's own
    (``_shape``, cache busters) and are not options."""
    from ..items import Query

    values, filters = _read(params, PARAMETERS, allow_where)
    shape = _single(params, "_shape") or "array"
    if shape not in ("array", "object"):
        raise ApiError(400, f"_shape must be array or object, not {shape[:40]!r}")

    text, item, expression = values.pop("q", None), values.pop("id", None), values.pop("expr", None)
    given = [name for name, value in (("q", text), ("id", item), ("expr", expression)) if value]
    if len(given) > 1:
        raise ApiError(400, f"Give one of q, id or expr, not {' and '.join(given)}")
    keep_terms = values.pop("keep_terms", False)
    if keep_terms and not expression:
        raise ApiError(400, "keep_terms applies with expr")
    mode = values.get("mode", "vector")
    if expression and mode != "vector":
        raise ApiError(400, "expr searches by vector: it takes no mode text or hybrid")
    if values.get("fts_syntax") and mode == "vector":
        raise ApiError(400, "fts_syntax applies with mode=text or mode=hybrid")
    if expression:
        from ..analysis.arithmetic import parse_expression
        from ..analysis.terms import describe_term

        try:
            terms = parse_expression(expression)
        except VibesError as error:
            raise ApiError(400, str(error)) from None
        if any(describe_term(term)[0] == "file" for _, term in terms):
            # The server's files are not the caller's to read.
            raise ApiError(400, "expr takes texts and id: terms here, not file: terms")
    query: Query | None = None
    if text:
        query = Query(text=text)
    elif item:
        query = Query(id=item)
    database = values.pop("database", None)
    n = values.pop("n", 10)
    if filters:
        values["filters"] = filters
    if "fts_syntax" in values:
        values["text_syntax"] = values.pop("fts_syntax")
    return SearchRequest(
        query, expression or None, keep_terms, n, values, shape=shape, database=database
    )


def _limited(
    collection: Collection, options: Mapping[str, Any], seconds: float | None
) -> AbstractContextManager[None]:
    """A time limit on the caller's own SQL (``where``), as Datasette limits its SQL."""
    if seconds is None or not options.get("where"):
        return nullcontext()
    return collection.database.store.time_limit(seconds)


def run_search(
    collection: Collection,
    request: SearchRequest,
    *,
    batcher: Batcher | None = None,
    time_limit: float | None = None,
    **extra: Any,
) -> SearchResults[Any]:
    """The results of ``request`` in ``collection``: one call of the search pipeline,
    exactly as ``vibes similar`` makes it. ``extra`` adds options (the page's snippet
    marks, say); a ``where`` runs for at most ``time_limit`` seconds. With a ``batcher``,
    a search by text may be answered together with others of the same options arriving
    at the same time (:mod:`vibes.web.batching`; scores may then differ from a lone
    search's in the last bits of a float)."""
    options = {**request.options, **extra}
    query = request.query
    if batcher is not None and query is not None and isinstance(query.text, str):
        key = (id(collection.database), collection.id, request.n, options_key(options))

        def answer(queries: Sequence[Query]) -> list[SearchResults[Any]]:
            with _limited(collection, options, time_limit):
                return collection.search_many(queries, request.n, **options)

        return batcher.run(key, query, answer)
    with _limited(collection, options, time_limit):
        if request.expression is not None:
            from ..analysis.arithmetic import expression_search

            return expression_search(
                collection, request.expression, request.n, keep_terms=request.keep_terms, **options
            )
        if request.query is None:
            raise ApiError(400, "Give q=TEXT to search for, id=ITEM or expr=EXPRESSION")
        return collection.search(request.query, request.n, **options)


@dataclass
class AskRequest:
    """A checked question: its text and the options of :meth:`~vibes.Collection.ask`."""

    question: str
    options: dict[str, Any] = field(default_factory=dict)
    database: str | None = None
    #: Answer as server-sent events, piece by piece (``stream=1``).
    stream: bool = False


def parse_ask(params: Params, *, allow_where: bool = True) -> AskRequest:
    """Check the query string of a question (``q``, and ``vibes ask``'s options) and turn
    it into an :class:`AskRequest`; :class:`ApiError` names the first problem."""
    values, filters = _read(params, ASK_PARAMETERS, allow_where)
    question = values.pop("q", "")
    if not question.strip():
        raise ApiError(400, "Give q=QUESTION to ask")
    if filters:
        values["filters"] = filters
    database = values.pop("database", None)
    stream = values.pop("stream", False)
    return AskRequest(question, values, database=database, stream=stream)


def run_ask(
    collection: Collection,
    request: AskRequest,
    *,
    stream: bool = False,
    time_limit: float | None = None,
) -> Any:
    """The :class:`~vibes.ask.Answer` to ``request``, as ``vibes ask`` gets it; with
    ``stream``, a :class:`~vibes.ask.StreamingAnswer` to iterate over (its passages
    are found before it returns; a ``where`` runs for at most ``time_limit`` seconds)."""
    options = dict(request.options)
    sources_only = options.pop("sources_only", False)
    with _limited(collection, options, time_limit):
        if stream and not sources_only:
            return collection.ask(request.question, stream=True, **options)
        return collection.ask(request.question, sources_only=sources_only, **options)


def answer_events(streaming: Any, stopped: Callable[[], bool]) -> Iterator[tuple[str, Any]]:
    """A streamed answer as (event, data) pairs: ``sources`` (the numbered sources, at
    once), ``piece`` (each piece of text as the model writes it), then ``done`` (what
    ``vibes ask --json`` prints), or ``error`` (``{"error", "status"}``) if the model
    fails midway. Stops early when ``stopped()`` (the client went away)."""
    try:
        yield "sources", [source.to_dict() for source in getattr(streaming, "sources", [])]
        if hasattr(streaming, "result"):
            for piece in streaming:
                if stopped():
                    return
                yield "piece", piece
            streaming = streaming.result()
        yield "done", streaming.to_dict()
    except Exception as error:
        problem = error_for(error)
        yield "error", {"error": problem.message, "status": problem.status}


def results_json(found: Sequence[Any]) -> list[dict[str, Any]]:
    """The hits as ``vibes similar`` prints them, one object each, best first."""
    return [hit.to_dict() for hit in found]

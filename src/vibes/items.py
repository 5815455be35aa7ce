"""The records that cross layers: items to embed, search queries and results, write stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from .errors import InputError, VibesError
from .jsontext import check_metadata
from .store.base import DocumentRecord


@dataclass
class Item:
    """One item to embed. ``vector`` given means it is stored as is, without the model."""

    id: str
    content: str | bytes | None = None
    metadata: dict[str, Any] | None = None
    vector: Sequence[float] | None = None
    #: Set on the chunks of a chunked document: where the chunk lies in it.
    chunk: ChunkInfo | None = field(default=None, repr=False)
    #: Where the item came from (one ``--files`` directory and prefix, say), recorded so
    #: that pruning removes only what the same source wrote; None for anything else.
    source: str | None = field(default=None, repr=False)


@dataclass
class ChunkInfo:
    """Where a chunk lies in its document; the last chunk also finishes the document."""

    document_id: str
    index: int
    start_offset: int
    end_offset: int
    start_line: int
    end_line: int
    context: str | None = None
    finish: DocumentRecord | None = None


@dataclass
class Match:
    """A search result: the item's id, its similarity score, stored content and metadata."""

    id: str
    score: float
    content: str | None = None
    metadata: dict[str, Any] | None = None
    #: For chunks: the document, and the chunk's line range in it (1-based, inclusive).
    document: str | None = None
    lines: tuple[int, int] | None = None
    #: With ``context=N``: the chunks around this one, itself included, in order.
    context: list[dict[str, Any]] | None = None
    #: With ``snippets=True``: the best matching fragment of the text, query words marked.
    snippet: str | None = None
    #: In hybrid search or after re-ranking: each stage's ``{"rank", "score"}`` for this
    #: item (``vector``, ``text``, ``fused``, ``rerank``), None where a leg missed it.
    legs: dict[str, dict[str, float] | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("document", "lines", "context", "snippet", "legs"):
            if data[key] is None:
                del data[key]
        if self.lines is not None:
            data["lines"] = list(self.lines)
        return data


@dataclass
class DocumentMatch:
    """A document ranked by its chunks: its score and the chunks that matched."""

    id: str
    score: float
    metadata: dict[str, Any] | None
    chunks: list[Match]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "metadata": self.metadata,
            "chunks": [
                {k: v for k, v in c.to_dict().items() if k not in ("metadata", "document")}
                for c in self.chunks
            ],
        }


@dataclass
class EmbedStats:
    """What one :meth:`Collection.embed_multi` call did."""

    #: Items whose content went through the model.
    embedded: int = 0
    #: Items stored with a vector taken from another item of identical content, or given.
    reused: int = 0
    #: Unchanged items whose stored content or metadata were refreshed (no embedding).
    updated: int = 0
    #: Unchanged items left as they were.
    skipped: int = 0
    #: Chunked documents written, and those left as they were.
    documents: int = 0
    documents_skipped: int = 0
    #: Documents that gave no chunk, and chunks left from longer versions that were deleted.
    empty_documents: int = 0
    stale_chunks: int = 0
    #: (id, reason) of items the model could not embed, skipped.
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: Items whose id an earlier item of the same input already had, and the first few such
    #: ids. Each replaced the earlier one (the last wins) and is also counted above.
    duplicates: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    #: What went wrong without stopping the run (the model cut long texts, the index
    #: could not be updated), as sentences; also issued as Python warnings.
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.embedded + self.reused + self.updated + self.skipped + len(self.rejected)


def as_item(value: Item | dict[str, Any] | tuple | list) -> Item:
    """Accept an Item, a dict with id/content/metadata/vector keys, or an (id, content[,
    metadata]) tuple."""
    if isinstance(value, Item):
        item = value
    elif isinstance(value, dict):
        unknown = set(value) - {"id", "content", "metadata", "vector"}
        if unknown:
            raise InputError(f"Unknown item keys: {', '.join(sorted(unknown))}")
        item = Item(**value)
    elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
        item = Item(*value)
    else:
        raise InputError(f"Cannot embed {value!r}: expected (id, content[, metadata])")
    if item.id is None or str(item.id) == "":
        raise InputError("An item has no id")
    item.id = str(item.id)
    if item.metadata is not None:
        check_metadata(item.metadata, f"Item {item.id!r}")
    if item.vector is None and (item.content is None or item.content in ("", b"")):
        raise InputError(f"Item {item.id!r} has empty content")
    return item


_T = TypeVar("_T")


class SearchResults(list[_T], Generic[_T]):
    """A list of results, best first, with the warnings the search gave (an index that
    could not be used, a query the model cut) as data, for callers that show them
    elsewhere than on stderr (a JSON API, say)."""

    def __init__(self, results: Sequence[_T] = (), warnings: Sequence[str] = ()) -> None:
        super().__init__(results)
        self.warnings: list[str] = list(warnings)


@dataclass(frozen=True)
class Query:
    """What to search for: a text (or bytes, for image models), a vector, or the id of a
    stored item (which is then left out of its own results). ``exclude`` leaves out one
    more item (or document) by id."""

    text: str | bytes | None = None
    vector: Any = None
    id: str | None = None
    exclude: str | None = None

    def __post_init__(self) -> None:
        given = sum(value is not None for value in (self.text, self.vector, self.id))
        if given != 1:
            raise VibesError("A query is exactly one of a text, a vector or an item id")

    @classmethod
    def of(cls, value: Query | str | bytes | Any) -> Query:
        """A query from a :class:`Query`, a text (str or bytes), or a vector."""
        if isinstance(value, Query):
            return value
        if isinstance(value, (str, bytes)):
            return cls(text=value)
        return cls(vector=value)


def check_count(n: Any) -> int:
    """``n`` as a number of results, or a one-line error when it is not a positive integer."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise VibesError(f"The number of results must be a positive integer, not {n!r}")
    return n

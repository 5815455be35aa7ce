"""A named collection of embeddings: writing items, and searching them by meaning."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from . import vectors as vector_format
from .errors import (
    DimensionMismatchError,
    InputError,
    ItemNotFoundError,
    UnknownModelError,
    VibesError,
)
from .index.manager import EXACT_FILTER_LIMIT
from .models import EmbeddingModel, get_model
from .models.base import warn_truncation
from .store import CollectionRecord, DocumentRecord

if TYPE_CHECKING:
    import numpy as np

    from .database import Database

DEFAULT_BATCH_SIZE = 100


@dataclass
class Item:
    """One item to embed. ``vector`` given means it is stored as is, without the model."""

    id: str
    content: str | bytes | None = None
    metadata: dict[str, Any] | None = None
    vector: Sequence[float] | None = None
    #: Set on the chunks of a chunked document: where the chunk lies in it.
    chunk: ChunkInfo | None = field(default=None, repr=False)


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("document", "lines", "context"):
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


DOCUMENT_SCORES = ("max", "mean", "sum")


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
    if item.metadata is not None and not isinstance(item.metadata, dict):
        raise InputError(f"Item {item.id!r}: metadata must be a JSON object")
    if item.vector is None and (item.content is None or item.content in ("", b"")):
        raise InputError(f"Item {item.id!r} has empty content")
    return item


def _check_count(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise VibesError(f"The number of results must be a positive integer, not {n!r}")


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Collection:
    """A collection of embeddings in a :class:`~vibes.Database`, all made by one model.

    Get one with ``db.collection(name, model=...)``.
    """

    def __init__(
        self, database: Database, record: CollectionRecord, model: EmbeddingModel | None = None
    ) -> None:
        self.database = database
        self._record = record
        self._model = model

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} model={self.model_id!r}>"

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def id(self) -> int:
        return self._record.id

    @property
    def model_id(self) -> str:
        return self._record.model

    @property
    def distance(self) -> str:
        """How vectors are compared: ``cosine`` (the default), ``dot`` or ``euclidean``."""
        return self._record.distance

    @property
    def dimensions(self) -> int | None:
        """Length of the collection's vectors; None while it is empty and the model unloaded."""
        if self._record.dimensions is None:
            return self.database.store.sample_dimensions(self.id)
        return self._record.dimensions

    @property
    def _store(self):
        return self.database.store

    def model(self) -> EmbeddingModel:
        """The embedding model this collection was built with."""
        if self._model is None:
            try:
                self._model = get_model(self.model_id)
            except UnknownModelError:
                raise UnknownModelError(
                    f"Collection {self.name!r} uses model {self.model_id}, which is not "
                    "installed (run 'vibes models' to list models)"
                ) from None
        return self._model

    def count(self) -> int:
        """Number of items in the collection."""
        return self._store.count(self.id)

    def __len__(self) -> int:
        return self.count()

    # -- writing -------------------------------------------------------------------------

    def embed(
        self,
        id: str,
        content: str | bytes,
        metadata: dict[str, Any] | None = None,
        store: bool = False,
    ) -> None:
        """Embed ``content`` and store its vector under ``id`` (replacing any item there).

        ``store=True`` keeps the content itself; ``metadata`` is a JSON-able dict.
        """
        self.embed_multi([Item(id, content, metadata)], store=store)

    def embed_multi(
        self,
        items: Iterable[Item | dict[str, Any] | tuple],
        *,
        store: bool = False,
        batch_size: int | None = None,
        on_batch: Callable[[int, EmbedStats], None] | None = None,
        chunk: str | None = None,
        chunk_options: dict[str, Any] | None = None,
    ) -> EmbedStats:
        """Embed many items, one transaction per batch; returns counts of what was done.

        Items are :class:`Item` objects, dicts or ``(id, content[, metadata])`` tuples.
        Items whose id and content are already stored are not embedded again (their stored
        content and metadata are refreshed if they changed); identical content under another
        id reuses the stored vector. A failure or Ctrl-C keeps every batch already committed,
        so a re-run resumes where it stopped. ``on_batch(n, stats)`` is called after each batch.

        ``chunk`` names a chunker (see ``vibes chunkers``): each item is then a document,
        stored as chunks with ids ``ID#1``, ``ID#2``... A changed document's chunks replace
        its old ones; unchanged chunk texts are not embedded again, and unchanged documents
        are not even cut again.
        """
        if batch_size is not None and batch_size < 1:
            raise VibesError("Batch size must be at least 1")
        try:
            model_limit = self.model().batch_size
        except UnknownModelError:
            model_limit = None  # the model is only needed if something must be embedded
        limits = [limit for limit in (batch_size, model_limit) if limit]
        size = min(limits) if limits else DEFAULT_BATCH_SIZE
        stats = EmbedStats()
        stream: Iterable[Item] = (as_item(value) for value in items)
        if chunk is not None:
            stream = self._chunked(stream, chunk, chunk_options or {}, store, stats)
        for batch in _batches(stream, size):
            self._write_batch(batch, store, stats)
            if on_batch is not None:
                on_batch(len(batch), stats)
        if stats.embedded or stats.reused or stats.stale_chunks or stats.empty_documents:
            self._maintain_index()
        if self._model is not None:
            warn_truncation(self._model)
        return stats

    def _chunked(
        self,
        documents: Iterable[Item],
        name: str,
        options: dict[str, Any],
        store: bool,
        stats: EmbedStats,
    ) -> Iterator[Item]:
        """The chunks of each document, as items; unchanged documents yield nothing."""
        from .chunking import get_chunker

        chunker = get_chunker(name)
        settings = chunker.settings(options)
        settings_json = json.dumps(settings, sort_keys=True)
        model: EmbeddingModel | None = None
        if name == "tokens":
            model = self.model()  # its tokenizer sets the window
        for document in documents:
            if not isinstance(document.content, str):
                raise InputError(
                    f"Item {document.id!r}: chunker {name!r} cuts text, not binary content"
                )
            digest = vector_format.content_hash(document.content)
            metadata = json.dumps(document.metadata) if document.metadata else None
            previous = self._store.document(self.id, document.id)
            if (
                previous is not None
                and (previous.content_hash, previous.chunker, previous.settings)
                == (digest, name, settings_json)
                and previous.metadata == metadata
                and (previous.stored or not store)
            ):
                stats.documents_skipped += 1
                stats.skipped += previous.chunk_count
                continue
            chunks = chunker.chunk(document.content, settings, model)
            if not chunks:
                stats.empty_documents += 1
                with self._store.transaction() as conn:
                    stats.stale_chunks += self._store.delete_documents(conn, self.id, [document.id])
                continue
            record = DocumentRecord(
                document.id, digest, name, settings_json, metadata, int(store), len(chunks)
            )
            for piece in chunks:
                info = ChunkInfo(
                    document.id,
                    piece.index,
                    piece.start,
                    piece.end,
                    piece.start_line,
                    piece.end_line,
                    piece.context,
                    record if piece is chunks[-1] else None,
                )
                yield Item(
                    f"{document.id}#{piece.index + 1}",
                    piece.embed_text,
                    document.metadata,
                    chunk=info,
                )

    def _maintain_index(self) -> None:
        """Bring the index up to date after a write. Its failure (a full disk, say) loses
        nothing: the rows are committed, and searches stay correct through the change log."""
        import warnings

        from .index.manager import IndexWarning

        try:
            self.database.indexes.maintain(self)
        except (OSError, RuntimeError, ValueError) as error:
            warnings.warn(
                f"The index of collection {self.name!r} was not updated ({error}); "
                "searches stay correct and the next write retries",
                IndexWarning,
                stacklevel=3,
            )

    def _write_batch(self, batch: list[Item], store: bool, stats: EmbedStats) -> None:
        import numpy as np

        # The last occurrence of an id in a batch wins, as it would across batches.
        by_id: dict[str, Item] = {}
        for item in batch:
            by_id.pop(item.id, None)
            by_id[item.id] = item
        items = list(by_id.values())
        stats.skipped += len(batch) - len(items)
        hashes = {
            item.id: vector_format.content_hash(item.content if item.content is not None else "")
            for item in items
        }
        existing = self._store.get_items(self.id, [item.id for item in items])
        now = int(time.time())

        refresh: list[tuple] = []
        pending: list[Item] = []
        for item in items:
            old = existing.get(item.id)
            if item.vector is None and old is not None and old.content_hash == hashes[item.id]:
                row = self._refresh_row(item, old, store, now)
                if row is None:
                    stats.skipped += 1
                else:
                    refresh.append(row)
                    stats.updated += 1
            else:
                pending.append(item)

        vectors: dict[str, np.ndarray | bytes] = {}
        given = [item for item in pending if item.vector is not None]
        if given:
            array = np.asarray([item.vector for item in given], dtype=np.float32)
            self._check_vectors(array, [item.id for item in given], "Given")
            vectors.update(zip((item.id for item in given), array))
        to_embed = [item for item in pending if item.vector is None]
        if to_embed:
            # Items the model cannot embed (a file that is no image, for an image model)
            # are skipped and counted, not fatal.
            model = self.model()
            rejected = {}
            for item in to_embed:
                reason = model.reject(item.content)  # type: ignore[arg-type]
                if reason is not None:
                    rejected[item.id] = reason
            if rejected:
                stats.rejected.extend(rejected.items())
                to_embed = [item for item in to_embed if item.id not in rejected]
                pending = [item for item in pending if item.id not in rejected]
        reusable = self._store.vectors_by_hash(self.id, [hashes[item.id] for item in to_embed])
        first_with_hash: dict[bytes, Item] = {}
        for item in to_embed:
            content_hash = hashes[item.id]
            if content_hash in reusable:
                vectors[item.id] = reusable[content_hash]
            else:
                first_with_hash.setdefault(content_hash, item)
        unique = list(first_with_hash.values())
        if unique:
            embedded = self._embed([item.content for item in unique])
            self._check_vectors(embedded, [item.id for item in unique], "Model")
            by_hash = dict(zip(first_with_hash, embedded))
            for item in to_embed:
                if item.id not in vectors:
                    vectors[item.id] = by_hash[hashes[item.id]]
        stats.embedded += len(unique)
        stats.reused += len(pending) - len(unique)

        rows = []
        for item in pending:
            vector = vectors[item.id]
            blob = vector if isinstance(vector, bytes) else vector_format.encode(vector)
            text = item.content if store and isinstance(item.content, str) else None
            binary = item.content if store and isinstance(item.content, bytes) else None
            metadata = json.dumps(item.metadata) if item.metadata else None
            rows.append((self.id, item.id, blob, text, binary, hashes[item.id], metadata, now))
        chunked = [item for item in items if item.chunk is not None]
        if not rows and not refresh and not chunked:
            return
        with self._store.transaction() as conn:
            if self._record.dimensions is None and rows:
                dimensions = len(rows[0][2]) // 4
                self._store.set_dimensions(self.id, dimensions)
            self._store.upsert(conn, rows)
            self._store.update_stored(conn, refresh)
            if chunked:
                self._store.upsert_chunks(
                    conn,
                    [
                        (self.id, item.id, c.document_id, c.index, c.start_offset, c.end_offset)
                        + (c.start_line, c.end_line, c.context)
                        for item in chunked
                        if (c := item.chunk) is not None
                    ],
                )
                for item in chunked:
                    if item.chunk is not None and item.chunk.finish is not None:
                        finish = item.chunk.finish
                        stats.stale_chunks += self._store.finish_document(conn, self.id, finish)
                        stats.documents += 1
        if self._record.dimensions is None and rows:
            self._record = self._store.get_collection(self.name) or self._record

    def _refresh_row(self, item: Item, old: Any, store: bool, now: int) -> tuple | None:
        """The update for an unchanged item whose stored content or metadata differ, or None."""
        text = binary = None
        if store and isinstance(item.content, str) and old.content != item.content:
            text = item.content
        if store and isinstance(item.content, bytes) and old.content_blob != item.content:
            binary = item.content
        metadata = None
        if item.metadata:
            encoded = json.dumps(item.metadata)
            if encoded != old.metadata:
                metadata = encoded
        if text is None and binary is None and metadata is None:
            return None
        return (text, binary, metadata, now, self.id, item.id)

    def _embed(self, contents: list[Any], *, query: bool = False) -> np.ndarray:
        """Run the model over ``contents``; its failures become one-line VibesErrors."""
        import numpy as np

        model = self.model()
        if any(isinstance(c, bytes) for c in contents) and not model.supports_binary:
            raise VibesError(f"Model {model.model_id} cannot embed binary content")
        embed = model.embed_query_batch if query else model.embed_batch
        try:
            result = embed(contents)
            array = result if isinstance(result, np.ndarray) else np.asarray(list(result))
        except (VibesError, KeyboardInterrupt):
            raise
        except Exception as error:  # a plugin's failure, reported without a traceback
            raise VibesError(
                f"Model {model.model_id} failed: {type(error).__name__}: {error}"
            ) from error
        return array.astype(np.float32, copy=False)

    def _check_vectors(self, array: np.ndarray, ids: list[str], source: str) -> None:
        import numpy as np

        if array.ndim != 2 or array.shape[0] != len(ids):
            raise VibesError(
                f"{source} vectors do not match the items: got {array.shape[0]} for {len(ids)}"
            )
        expected = self._record.dimensions
        if expected is not None and array.shape[1] != expected:
            raise DimensionMismatchError(
                f"{source} vectors have {array.shape[1]} dimensions; collection {self.name!r} "
                f"holds {expected}-dimensional vectors"
            )
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            bad = ids[int(np.argmin(finite))]
            raise VibesError(f"{source} vector for item {bad!r} contains NaN or infinity")
        nonzero = np.any(array != 0, axis=1)
        if not nonzero.all():
            bad = ids[int(np.argmin(nonzero))]
            raise VibesError(f"{source} vector for item {bad!r} is all zeros")

    def delete_items(self, ids: Sequence[str]) -> int:
        """Delete items by id, all or none: raises if any id is missing. The id of a chunked
        document deletes all its chunks. Returns how many rows went."""
        ids = list(dict.fromkeys(ids))
        documents = set(self._store.document_ids(self.id)) & set(ids)
        plain = [item_id for item_id in ids if item_id not in documents]
        found = self._store.get_items(self.id, plain)
        missing = [item_id for item_id in plain if item_id not in found]
        if missing:
            raise ItemNotFoundError(
                f"Not in collection {self.name!r}: {', '.join(repr(m) for m in missing)}"
            )
        with self._store.transaction() as conn:
            deleted = self._store.delete_documents(conn, self.id, sorted(documents))
            deleted += self._store.delete_items(conn, self.id, plain)
        self._maintain_index()
        return deleted

    def prune(self, keep: Iterable[str], *, prefix: str = "") -> int:
        """Delete the documents and items whose ids start with ``prefix`` but are not in
        ``keep`` (what ``embed-multi --files ... --prune`` does). Returns rows deleted."""
        keep = set(keep)
        documents = [
            d for d in self._store.document_ids(self.id) if d.startswith(prefix) and d not in keep
        ]
        chunk_ids = set(self._store.chunk_ids(self.id))
        plain = [
            item_id
            for item_id in self._store.item_ids(self.id)
            if item_id.startswith(prefix) and item_id not in keep and item_id not in chunk_ids
        ]
        with self._store.transaction() as conn:
            deleted = self._store.delete_documents(conn, self.id, documents)
            deleted += self._store.delete_items(conn, self.id, plain)
        if deleted:
            self._maintain_index()
        return deleted

    def delete(self) -> None:
        """Delete the collection, every item in it, and its index."""
        state = self._store.index_state(self.id)
        self._store.delete_collection(self.id)
        self.database._forget_index(self.id)
        self.database.indexes.forget(self.id, state)

    # -- reading -------------------------------------------------------------------------

    def get(self, id: str) -> Match | None:
        """The stored item ``id`` (score 1.0), or None."""
        found = self._store.get_items(self.id, [id]).get(id)
        if found is None:
            return None
        return Match(id, 1.0, found.content, json.loads(found.metadata) if found.metadata else None)

    def vector(self, id: str) -> list[float]:
        """The stored vector of item ``id``."""
        blob = self._store.get_vector(self.id, id)
        if blob is None:
            raise ItemNotFoundError(f"No item {id!r} in collection {self.name!r}")
        return vector_format.decode(blob)

    def items(self, *, vectors: bool = False) -> Iterator[dict[str, Any]]:
        """Every item as a dict of id, content, metadata (and vector), ordered by id."""
        for row in self._store.iter_items(self.id, with_vectors=vectors):
            item: dict[str, Any] = {
                "id": row[0],
                "content": row[1],
                "metadata": json.loads(row[3]) if row[3] else None,
            }
            if vectors:
                item["vector"] = vector_format.decode(row[4])
            yield item

    def similar(self, content: str | bytes, n: int = 10, **options: Any) -> list[Match]:
        """The ``n`` items most similar to ``content``, best first.

        Options (for every ``similar*`` method): ``filters`` (expressions such as
        ``"year>=2020"``, or a ``{key: value}`` dict), ``prefix`` (ids starting with it,
        literally), ``where`` (an SQL condition on ``embeddings``), ``min_score``, and
        ``exact=True`` to bypass the approximate index.
        """
        return self.similar_batch([content], n, **options)[0]

    def similar_batch(
        self, contents: Sequence[str | bytes], n: int = 10, **options: Any
    ) -> list[list[Match]]:
        """:meth:`similar` for many queries at once: one model call, one matrix product."""
        if not contents:
            return []
        return self.similar_by_vectors(self._embed_queries(contents), n, **options)

    def _embed_queries(self, contents: Sequence[str | bytes]) -> np.ndarray:
        """Search queries through the model (with its query prefix), saying what it cut."""
        for content in contents:
            if content is None or content in ("", b""):
                raise InputError("No content to search for")
        vectors = self._embed(list(contents), query=True)
        warn_truncation(self.model())
        return vectors

    def similar_by_id(self, id: str, n: int = 10, **options: Any) -> list[Match]:
        """The ``n`` items most similar to the stored item ``id`` (itself left out)."""
        return self.similar_by_vector(self.vector(id), n, skip_id=id, **options)

    def similar_by_vector(
        self, vector: Sequence[float], n: int = 10, *, skip_id: str | None = None, **options: Any
    ) -> list[Match]:
        """The ``n`` items most similar to ``vector``, best first; ``skip_id`` leaves one out."""
        return self.similar_by_vectors([vector], n, skip_id=skip_id, **options)[0]

    def similar_by_vectors(
        self,
        vectors: Sequence[Sequence[float]] | np.ndarray,
        n: int = 10,
        *,
        filters: Sequence[str] | dict[str, Any] | None = None,
        prefix: str | None = None,
        where: str | None = None,
        min_score: float | None = None,
        exact: bool = False,
        skip_id: str | None = None,
        context: int = 0,
    ) -> list[list[Match]]:
        """The ``n`` most similar items for each of many query vectors, in one pass.
        ``context=N`` adds to each chunk the N chunks before and after it."""
        import numpy as np

        from .index.exact import prepare_queries
        from .index.filters import build_filter

        _check_count(n)
        search_filter = build_filter(filters, prefix=prefix, where=where)
        dimensions = self.dimensions
        if dimensions is None:  # an empty collection
            return [[] for _ in range(len(vectors))]
        queries = prepare_queries(np.asarray(vectors, dtype=np.float32), dimensions, self.distance)
        candidates = None
        if search_filter:
            try:
                candidates = self._store.matching(self.id, search_filter.sql, search_filter.params)
            except sqlite3.Error as error:
                raise VibesError(f"Invalid filter: {error}") from None
            if not candidates:
                return [[] for _ in range(queries.shape[0])]
        wanted = n + (1 if skip_id is not None else 0)
        hits = None
        indexes = self.database.indexes
        live = None if exact else indexes.live(self)
        if live is not None and (candidates is None or len(candidates) > EXACT_FILTER_LIMIT):
            hits = indexes.search(live, queries, wanted, candidates)
        if hits is None:
            hits = self._exact_search(queries, wanted, candidates)
        results = []
        for pairs in hits:
            pairs = [(i, score) for i, score in pairs if i != skip_id][:n]
            if min_score is not None:
                pairs = [(i, score) for i, score in pairs if score >= min_score]
            results.append(pairs)
        return self._matches(results, context)

    def _exact_search(
        self, queries: np.ndarray, n: int, candidates: list[tuple[int | None, str]] | None
    ) -> list[list[tuple[str, float]]]:
        index = self.database._exact_index(self)
        if index is None:
            return [[] for _ in range(queries.shape[0])]
        rows = None if candidates is None else index.positions([i for _, i in candidates])
        return index.search_many(queries, n, rows=rows)

    def _matches(
        self, results: list[list[tuple[str, float]]], context: int = 0
    ) -> list[list[Match]]:
        """Attach stored content, metadata and chunk positions to (id, score) results."""
        if context < 0:
            raise VibesError("The context must be 0 or more chunks")
        ids = list({i for pairs in results for i, _ in pairs})
        stored = self._store.get_items(self.id, ids)
        chunks = self._store.chunk_records(self.id, ids)
        output = []
        for pairs in results:
            matches = []
            for item_id, score in pairs:
                found = stored.get(item_id)
                content = found.content if found else None
                metadata = json.loads(found.metadata) if found and found.metadata else None
                match = Match(item_id, score, content, metadata)
                record = chunks.get(item_id)
                if record is not None:
                    document, index, _, _, start_line, end_line, _ = record
                    match.document, match.lines = document, (start_line, end_line)
                    if context:
                        match.context = [
                            {"id": i, "lines": [a, b], "content": text}
                            for i, _, a, b, text in self._store.document_chunks(
                                self.id, document, index - context, index + context
                            )
                        ]
                matches.append(match)
            output.append(matches)
        return output

    def similar_documents(
        self,
        content: str | bytes,
        n: int = 10,
        *,
        document_score: str = "max",
        **options: Any,
    ) -> list[DocumentMatch]:
        """The ``n`` documents whose chunks best match ``content``, each with its matching
        chunks (the best ``chunks_per_document``, default 3). ``document_score``: ``max``
        (the best chunk, the default), ``mean`` or ``sum`` of the scores of its chunks among
        the hits. Other options as for :meth:`similar`."""
        vector = self._embed_queries([content])[0]
        return self.similar_documents_by_vector(vector, n, document_score=document_score, **options)

    def similar_documents_by_vector(
        self,
        vector: Sequence[float],
        n: int = 10,
        *,
        document_score: str = "max",
        chunks_per_document: int = 3,
        **options: Any,
    ) -> list[DocumentMatch]:
        """:meth:`similar_documents` for a query vector."""
        if document_score not in DOCUMENT_SCORES:
            raise VibesError(
                f"Unknown document score {document_score!r}: use {', '.join(DOCUMENT_SCORES)}"
            )
        _check_count(n)
        skip_id = options.get("skip_id")
        total = self.count()
        k = max(50, n * 10)
        while True:
            chunks = self.similar_by_vectors([vector], min(k, max(total, 1)), **options)[0]
            groups: dict[str, list[Match]] = {}
            for match in chunks:
                document = match.document or match.id
                if document != skip_id:  # searching by a document leaves it out
                    groups.setdefault(document, []).append(match)
            if len(groups) >= n or k >= total:
                break
            k *= 4
        scored = []
        for document, matches in groups.items():
            scores = [m.score for m in matches]
            value = {"max": max, "sum": sum, "mean": lambda s: sum(s) / len(s)}[document_score]
            metadata = matches[0].metadata
            shown = matches[:chunks_per_document]  # already best first
            scored.append(DocumentMatch(document, float(value(scores)), metadata, shown))
        scored.sort(key=lambda d: -d.score)
        return scored[:n]

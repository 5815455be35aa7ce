"""Writing to a collection: dedupe, vector reuse, chunk bookkeeping, one transaction a batch.

Nothing here searches, and nothing here knows which database is underneath: rows go to
the :class:`~vibes.store.Store` as typed records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import vectors as vector_format
from .errors import (
    DimensionMismatchError,
    InputError,
    ItemNotFoundError,
    ModelMismatchError,
    VibesError,
)
from .filters import is_number
from .index.fulltext import FullText
from .items import ChunkInfo, EmbedStats, Item, as_item
from .models.base import EmbeddingModel, embed_array
from .store.base import (
    ChunkRecord,
    CollectionRecord,
    DocumentRecord,
    ItemUpdate,
    ItemWrite,
    Store,
    StoredItem,
    Transaction,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BATCH_SIZE = 100

#: Put in a stream of items, it ends the batch there (yielded even when empty): what was
#: noted meanwhile (a document emptied) is then applied after it, before the next.
FLUSH = Item("", "")


def batches_of_distinct_ids(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Lists of up to ``size`` items, a list ending early rather than holding one id twice:
    a repeated id is then written after the earlier item, replacing it, exactly as if it
    came in a later batch, and every input item is counted once. :data:`FLUSH` ends a
    list where it stands."""
    batch: list[Item] = []
    ids: set[str] = set()
    for item in items:
        if item is FLUSH:
            yield batch
            batch, ids = [], set()
            continue
        if item.id in ids:
            yield batch
            batch, ids = [], set()
        batch.append(item)
        ids.add(item.id)
        # Yielded as soon as it is full, not when the next item arrives: input that fails
        # after a full batch must not cost that batch.
        if len(batch) >= size:
            yield batch
            batch, ids = [], set()
    if batch:
        yield batch


def _canonical(metadata: dict[str, Any] | None) -> str | None:
    # Compared as canonical JSON: key order does not matter, but 1, 1.0 and true differ.
    return json.dumps(metadata, sort_keys=True) if metadata else None


def check_vectors(
    array: np.ndarray, ids: list[str], source: str, expected: int | None, name: str
) -> None:
    """Refuse vectors that do not fit the collection: wrong count or length, NaN, zeros."""
    import numpy as np

    if array.ndim != 2 or array.shape[0] != len(ids):
        raise VibesError(
            f"{source} vectors do not match the items: got {array.shape[0]} for {len(ids)}"
        )
    if expected is not None and array.shape[1] != expected:
        raise DimensionMismatchError(
            f"{source} vectors have {array.shape[1]} dimensions; collection {name!r} "
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


#: The id of a collection not created yet: it is created by the transaction of its first
#: batch, so that a first write that fails leaves no empty collection behind, pinned to
#: the model, dimensions and distance of the failed attempt. No backend uses id 0.
NOT_CREATED = 0

#: How many duplicate ids a write names in its warning.
_NAMED_DUPLICATES = 5


class Writer:
    """Writes items into one collection.

    ``model`` is called only when something must be embedded, so unchanged re-runs work
    even where the model is not installed. A ``target`` whose id is :data:`NOT_CREATED`
    is created by the first batch that writes anything, with a full-text index unless
    ``fulltext`` is False. Every batch keeps the collection's full-text index in step,
    with the text it embeds whether or not the text is stored.
    """

    def __init__(
        self,
        store: Store,
        target: CollectionRecord,
        model: Callable[[], EmbeddingModel],
        *,
        fulltext: bool = True,
    ) -> None:
        self.store = store
        self.target = target
        self._model = model
        self.fulltext = FullText(store)
        self._create_fulltext = fulltext
        # Whether the target has a full-text index: asked once it exists.
        self._indexed: bool | None = None
        # Sources of items and documents seen but not yet written (unchanged documents
        # yield no chunk, yet their source may need recording).
        self._sources: dict[str, str | None] = {}
        self._seen: set[str] = set()
        # Documents whose chunks this run has cut (see _chunked), and those found empty
        # after that, whose chunks are deleted once the batch before them is written.
        self._cut: set[str] = set()
        self._emptied: list[str] = []

    def _adopt_existing(self) -> None:
        """While the target is not created here, take the record another writer made."""
        if self.target.id != NOT_CREATED:
            return
        found = self.store.get_collection(self.target.name)
        if found is not None:
            self.target = check_same_collection(found, self.target)

    def write(
        self,
        items: Iterable[Item | dict[str, Any] | tuple[Any, ...]],
        *,
        store: bool = False,
        batch_size: int | None = None,
        on_batch: Callable[[int, EmbedStats], None] | None = None,
        chunk: str | None = None,
        chunk_options: dict[str, Any] | None = None,
        model_batch_size: int | None = None,
    ) -> EmbedStats:
        """Embed and store many items, one transaction per batch (see
        :meth:`vibes.Collection.embed_multi`)."""
        if batch_size is not None and batch_size < 1:
            raise VibesError("Batch size must be at least 1")
        limits = [limit for limit in (batch_size, model_batch_size) if limit]
        size = min(limits) if limits else DEFAULT_BATCH_SIZE
        stats = EmbedStats()
        stream: Iterable[Item] = (as_item(value) for value in items)
        if chunk is not None:
            stream = self._chunked(stream, chunk, chunk_options or {}, store, stats)
        for batch in batches_of_distinct_ids(stream, size):
            if batch:
                self._write_batch(batch, store, stats)
                if on_batch is not None:
                    on_batch(len(batch), stats)
            self._delete_emptied(stats)
        self._flush_sources()
        if stats.duplicates:
            named = ", ".join(repr(i) for i in stats.duplicate_ids)
            more = ", ..." if stats.duplicates > len(stats.duplicate_ids) else ""
            stats.warnings.append(
                f"{stats.duplicates} item{'s' if stats.duplicates != 1 else ''} repeated an "
                f"id given earlier in the same input (the last one was kept): {named}{more}"
            )
        return stats

    def _note_id(self, item_id: str, stats: EmbedStats) -> bool:
        """Remember an id of this run; True (and counted) when it was seen before."""
        if item_id in self._seen:
            stats.duplicates += 1
            if len(stats.duplicate_ids) < _NAMED_DUPLICATES and item_id not in stats.duplicate_ids:
                stats.duplicate_ids.append(item_id)
            return True
        self._seen.add(item_id)
        return False

    def _source_changes(self) -> dict[str, str | None]:
        """The sources noted since the last write that differ from those recorded (the
        noted ones are forgotten either way)."""
        pending, self._sources = self._sources, {}
        if not pending or self.target.id == NOT_CREATED:
            return {}
        recorded = self.store.sources(self.target.id, list(pending))
        return {i: s for i, s in pending.items() if recorded.get(i) != s}

    def _flush_sources(self) -> None:
        """Record the sources of items and documents that were left unchanged, opening a
        write transaction only when one changed (a re-run of unchanged input writes
        nothing)."""
        changes = self._source_changes()
        if changes:
            with self.store.transaction() as tx:
                self.store.set_sources(tx, self.target.id, changes)

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
            model = self._model()  # its tokenizer sets the window
        for document in documents:
            if not isinstance(document.content, str):
                raise InputError(
                    f"Item {document.id!r}: chunker {name!r} cuts text, not binary content"
                )
            # A repeated document is cut again: the last copy wins, as for plain items.
            self._note_id(document.id, stats)
            digest = vector_format.content_hash(document.content)
            metadata = document.metadata or None
            self._adopt_existing()
            previous = self.store.document(self.target.id, document.id)
            if (
                previous is not None
                # A copy after one cut in this run: the earlier copy's chunks may wait in
                # the batch, so this one is cut too, to be written after them.
                and document.id not in self._cut
                and (previous.content_hash, previous.chunker, previous.settings)
                == (digest, name, settings_json)
                and _canonical(previous.metadata) == _canonical(metadata)
                and (previous.stored or not store)
                # Chunks deleted since (by `vibes delete`, llm or SQL) are cut again.
                and self.store.present_chunks(self.target.id, document.id) == previous.chunk_count
                # So are chunks stored without text that the full-text index lacks (it
                # was built after them): their vectors are reused, not embedded again.
                and (previous.stored or not self._unindexed(document.id, previous.chunk_count))
            ):
                stats.documents_skipped += 1
                stats.skipped += previous.chunk_count
                self._sources[document.id] = document.source
                continue
            chunks = chunker.chunk(document.content, settings, model)
            if not chunks:
                stats.empty_documents += 1
                self._emptied.append(document.id)
                self._sources.pop(document.id, None)  # an earlier copy's: nothing is left
                if document.id in self._cut:
                    # An earlier copy's chunks may wait in the batch: written first, then
                    # deleted with the rest (the last copy wins, as for plain items).
                    yield FLUSH
                else:
                    self._delete_emptied(stats)
                continue
            self._cut.add(document.id)
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
                    source=document.source,
                )

    def _delete_emptied(self, stats: EmbedStats) -> None:
        """Delete the chunks of the documents found empty since the last call."""
        emptied, self._emptied = self._emptied, []
        if emptied and self.target.id != NOT_CREATED:
            with self.store.transaction() as tx:
                stats.stale_chunks += self.store.delete_documents(tx, self.target.id, emptied)

    def _write_batch(self, batch: list[Item], store: bool, stats: EmbedStats) -> None:
        import numpy as np

        # A batch holds each id once (see batches_of_distinct_ids); an id repeated from an
        # earlier batch replaces what that batch wrote, and is counted and named.
        items = batch
        for item in items:
            if item.chunk is None:
                self._note_id(item.id, stats)
            self._sources[item.chunk.document_id if item.chunk else item.id] = item.source
        hashes = {
            item.id: vector_format.content_hash(item.content if item.content is not None else "")
            for item in items
        }
        self._adopt_existing()
        existing = self.store.get_items(self.target.id, [item.id for item in items])
        now = int(time.time())

        refresh: list[ItemUpdate] = []
        pending: list[Item] = []
        unchanged: list[Item] = []
        for item in items:
            old = existing.get(item.id)
            if item.vector is None and old is not None and old.content_hash == hashes[item.id]:
                update = self._refresh(item, old, store, now)
                if update is None:
                    stats.skipped += 1
                    unchanged.append(item)
                else:
                    refresh.append(update)
                    stats.updated += 1
            else:
                pending.append(item)
        # Unchanged items whose text the full-text index lacks (stored without text
        # before the index existed) are indexed now, with the text at hand.
        unindexed = self._unindexed_items(unchanged)

        vectors: dict[str, np.ndarray] = {}
        given = [item for item in pending if item.vector is not None]
        if given:
            array = _given_vectors(given)
            self._check(array, [item.id for item in given], "Given")
            vectors.update(zip((item.id for item in given), array))
        to_embed = [item for item in pending if item.vector is None]
        if to_embed:
            # Items the model cannot embed (a file that is no image, for an image model)
            # are skipped and counted, not fatal.
            model = self._model()
            rejected = {}
            for item in to_embed:
                reason = model.reject(item.content)  # type: ignore[arg-type]
                if reason is not None:
                    rejected[item.id] = reason
            if rejected:
                stats.rejected.extend(rejected.items())
                for item_id in rejected:
                    self._sources.pop(item_id, None)  # never written: no source to record
                to_embed = [item for item in to_embed if item.id not in rejected]
                pending = [item for item in pending if item.id not in rejected]
        reusable = self.store.vectors_by_hash(
            self.target.id, [hashes[item.id] for item in to_embed]
        )
        first_with_hash: dict[bytes, Item] = {}
        for item in to_embed:
            content_hash = hashes[item.id]
            if content_hash in reusable:
                vectors[item.id] = reusable[content_hash]
            else:
                first_with_hash.setdefault(content_hash, item)
        unique = list(first_with_hash.values())
        if unique:
            embedded = embed_array(self._model(), [item.content for item in unique])  # type: ignore[misc]
            self._check(embedded, [item.id for item in unique], "Model")
            by_hash = dict(zip(first_with_hash, embedded))
            for item in to_embed:
                if item.id not in vectors:
                    vectors[item.id] = by_hash[hashes[item.id]]
        stats.embedded += len(unique)
        stats.reused += len(pending) - len(unique)

        writes = [
            ItemWrite(
                item.id,
                vectors[item.id],
                item.content if store and isinstance(item.content, str) else None,
                item.content if store and isinstance(item.content, bytes) else None,
                hashes[item.id],
                item.metadata or None,
                now,
            )
            for item in pending
        ]
        chunked = [item for item in items if item.chunk is not None]
        if not writes and not refresh and not chunked and not unindexed:
            self._flush_sources()
            return
        with self.store.transaction() as tx:
            if self.target.id == NOT_CREATED:
                self._create(tx, writes)
            target = self.target
            if target.dimensions is None and writes:
                dimensions = int(np.asarray(writes[0].vector).shape[0])
                self.store.set_dimensions(tx, target.id, dimensions)
                self.target = target = replace(target, dimensions=dimensions)
            self.store.upsert(tx, target.id, writes)
            self.store.update_stored(tx, target.id, refresh)
            if chunked:
                self.store.upsert_chunks(
                    tx,
                    target.id,
                    [
                        ChunkRecord(
                            item.id,
                            c.document_id,
                            c.index,
                            c.start_offset,
                            c.end_offset,
                            c.start_line,
                            c.end_line,
                            c.context,
                        )
                        for item in chunked
                        if (c := item.chunk) is not None
                    ],
                )
                for item in chunked:
                    if item.chunk is not None and item.chunk.finish is not None:
                        stats.stale_chunks += self.store.finish_document(
                            tx, target.id, item.chunk.finish
                        )
                        stats.documents += 1
            changes = self._source_changes()
            if changes:
                self.store.set_sources(tx, target.id, changes)
            if self._has_fulltext():
                known = {item.id: _text(item) for item in pending + unindexed}
                known.update((update.id, update.content) for update in refresh if update.content)
                self.fulltext.sync(tx, target.id, known)

    def _has_fulltext(self) -> bool:
        if self.target.id == NOT_CREATED:
            return False
        if self._indexed is None:
            self._indexed = self.fulltext.enabled(self.target.id)
        return self._indexed

    def _unindexed_items(self, items: list[Item]) -> list[Item]:
        """Those of ``items`` with text that the full-text index has no entry for."""
        texts = [item for item in items if _text(item)]
        if not texts or not self._has_fulltext():
            return []
        missing = set(self.store.fulltext_missing(self.target.id, [i.id for i in texts]))
        return [item for item in texts if item.id in missing]

    def _unindexed(self, document_id: str, chunk_count: int) -> bool:
        """Whether any chunk of a stored document lacks its full-text entry."""
        if not self._has_fulltext():
            return False
        ids = [f"{document_id}#{number}" for number in range(1, chunk_count + 1)]
        return bool(self.store.fulltext_missing(self.target.id, ids))

    def _create(self, tx: Transaction, writes: list[ItemWrite]) -> None:
        """Create the target inside the first batch's transaction (or take the one another
        writer created meanwhile, if it is the same collection)."""
        import numpy as np

        wanted = self.target
        dimensions = wanted.dimensions
        if dimensions is None and writes:
            dimensions = int(np.asarray(writes[0].vector).shape[0])
        record = self.store.ensure_collection(
            tx, wanted.name, wanted.model, dimensions, wanted.distance
        )
        self.target = check_same_collection(record, wanted)
        # A new collection gets its full-text index from its first write; one that
        # another writer created meanwhile keeps whatever it has.
        if (
            self._create_fulltext
            and self.store.fulltext_state(self.target.id) is None
            and self.store.count(self.target.id) == 0
        ):
            self.fulltext.create(tx, self.target.id)
        self._indexed = None
        if writes:
            self._check(
                np.asarray([w.vector for w in writes], dtype=np.float32),
                [w.id for w in writes],
                "Model",
            )

    def _check(self, array: np.ndarray, ids: list[str], source: str) -> None:
        check_vectors(array, ids, source, self.target.dimensions, self.target.name)

    @staticmethod
    def _refresh(item: Item, old: StoredItem, store: bool, now: int) -> ItemUpdate | None:
        """The update for an unchanged item whose stored content or metadata differ, or None."""
        text = binary = None
        if store and isinstance(item.content, str) and old.content != item.content:
            text = item.content
        if store and isinstance(item.content, bytes) and old.content_blob != item.content:
            binary = item.content
        metadata = None
        if item.metadata and _canonical(item.metadata) != _canonical(old.metadata):
            metadata = item.metadata
        if text is None and binary is None and metadata is None:
            return None
        return ItemUpdate(item.id, text, binary, metadata, now)

    # -- deleting ---------------------------------------------------------------------------

    def delete_items(self, ids: Sequence[str]) -> int:
        """Delete items by id, all or none (see :meth:`vibes.Collection.delete_items`)."""
        ids = list(dict.fromkeys(ids))
        documents = set(self.store.document_ids(self.target.id)) & set(ids)
        plain = [item_id for item_id in ids if item_id not in documents]
        found = self.store.get_items(self.target.id, plain)
        missing = [item_id for item_id in plain if item_id not in found]
        if missing:
            raise ItemNotFoundError(
                f"Not in collection {self.target.name!r}: {', '.join(repr(m) for m in missing)}"
            )
        with self.store.transaction() as tx:
            deleted = self.store.delete_documents(tx, self.target.id, sorted(documents))
            deleted += self.store.delete_items(tx, self.target.id, plain)
        return deleted

    def stale(
        self, keep: Iterable[str], *, prefix: str = "", source: str | None = None
    ) -> list[str]:
        """The documents and items that :meth:`prune` would delete, sorted.

        With ``source``, only those recorded as written by that source (one ``--files``
        directory and prefix) and not in ``keep``; without it, every document and item
        whose id starts with ``prefix`` and is not in ``keep``.
        """
        keep = set(keep)
        collection_id = self.target.id
        if source is not None:
            return sorted(
                i
                for i in self.store.sourced_ids(collection_id, source)
                if i.startswith(prefix) and i not in keep
            )
        documents = [
            d
            for d in self.store.document_ids(collection_id)
            if d.startswith(prefix) and d not in keep
        ]
        chunk_ids = set(self.store.chunk_ids(collection_id))
        plain = [
            item_id
            for item_id in self.store.item_ids(collection_id)
            if item_id.startswith(prefix) and item_id not in keep and item_id not in chunk_ids
        ]
        return sorted(documents + plain)

    def prune(self, keep: Iterable[str], *, prefix: str = "", source: str | None = None) -> int:
        """Delete what :meth:`stale` lists; returns how many rows went."""
        stale = self.stale(keep, prefix=prefix, source=source)
        if not stale:
            return 0
        collection_id = self.target.id
        documents = set(self.store.document_ids(collection_id)).intersection(stale)
        plain = [i for i in stale if i not in documents]
        with self.store.transaction() as tx:
            deleted = self.store.delete_documents(tx, collection_id, sorted(documents))
            deleted += self.store.delete_items(tx, collection_id, plain)
            # Items deleted by llm or SQL leave no row for the trigger to clear their source.
            self.store.set_sources(tx, collection_id, dict.fromkeys(plain))
        return deleted


def _text(item: Item) -> str | None:
    """The text of an item for the full-text index (None for binary content)."""
    return item.content if isinstance(item.content, str) and item.content else None


def _given_vectors(items: list[Item]) -> np.ndarray:
    """The vectors given with items as one float32 array; a value too large for float32
    becomes infinity (refused by check_vectors) without numpy printing a warning."""
    import numpy as np

    lengths = {len(item.vector) for item in items if item.vector is not None}
    if len(lengths) > 1:
        raise VibesError(f"Given vectors differ in length ({', '.join(map(str, sorted(lengths)))})")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray([item.vector for item in items], dtype=np.float32)
    except (TypeError, ValueError):
        bad = next(
            (i.id for i in items if not all(is_number(v) for v in i.vector or ())), items[0].id
        )
        raise VibesError(
            f"Given vector for item {bad!r} holds values that are not numbers"
        ) from None


def check_same_collection(found: CollectionRecord, wanted: CollectionRecord) -> CollectionRecord:
    """``found`` if it is the collection ``wanted`` describes (same model and distance),
    else a one-line error: two writers created one name with different models."""
    from .models import same_model

    if not same_model(found.model, wanted.model):
        raise ModelMismatchError(
            f"Collection {found.name!r} uses model {found.model}, not {wanted.model}"
        )
    if found.distance != wanted.distance:
        raise VibesError(
            f"Collection {found.name!r} uses {found.distance} distance, not {wanted.distance}"
        )
    return found

"""Copying a collection to another database (or under another name), without embedding.

Everything goes through the :class:`~vibes.store.Store` interface, so a copy works between
any two backends, either way, and never needs the collection's model: vectors, stored
content, hashes, metadata, chunk and document records and sources are copied as stored.

The copy mirrors the source and is incremental: each page of source items is compared
with the same ids in the destination, and only what differs is written, one transaction
per page. A re-run of an unchanged copy writes nothing at all (the destination's change
log, and so its indexes, stay as they were); an interrupted copy keeps every committed
page, and a re-run goes on from there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .errors import DimensionMismatchError, ModelMismatchError, UnknownCollectionError, VibesError
from .index.fulltext import FullText
from .store import is_server_url
from .store.base import (
    ChunkRecord,
    CollectionRecord,
    DocumentRecord,
    ItemWrite,
    Store,
    StoredItem,
    Transaction,
)

if TYPE_CHECKING:
    import numpy as np

    from .database import Database

# numpy is imported inside the functions that need it: `vibes --help` stays instant.

__all__ = ["DEFAULT_BATCH_SIZE", "CopyStats", "copy_collection", "source_collection"]

#: Items compared, and written when they differ, per transaction.
DEFAULT_BATCH_SIZE = 1_000

#: ``progress(done, total)``: source items gone through (and committed) so far, of all.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CopyStats:
    """What one :func:`copy_collection` did, counted in items (chunks are items)."""

    #: Items that were not in the destination.
    copied: int = 0
    #: Items that were, but differed (vector, content, metadata, chunk record or source).
    updated: int = 0
    #: Items identical on both sides: not written.
    unchanged: int = 0
    #: Items only the destination held: deleted, as the copy mirrors the source.
    deleted: int = 0
    #: Chunked documents whose record was written (new or changed).
    documents: int = 0
    #: What went wrong without stopping the copy (an index that could not be updated).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings)}


def source_collection(source: Database, name: str) -> CollectionRecord:
    """The collection to copy, or :class:`UnknownCollectionError` when it does not exist."""
    record = source.store.get_collection(name) if name else None
    if record is None:
        raise UnknownCollectionError(
            f"Collection {name!r} does not exist in {source.label} "
            "(run 'vibes collections' to list them)"
        )
    return record


def copy_collection(
    source: Database,
    name: str,
    destination: Database,
    *,
    new_name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> CopyStats:
    """Copy collection ``name`` of ``source`` into ``destination`` (as ``new_name``).

    Vectors are copied as stored, never embedded again, so the model need not be
    installed. The destination collection, when it exists, must have the same model,
    dimensions and distance; it ends up mirroring the source: new items are copied,
    different ones rewritten, identical ones left alone, and items the source lacks
    deleted. One transaction per ``batch_size`` items: a failure keeps every committed
    batch and a re-run resumes. ``progress(done, total)`` is called after each batch.
    """
    if batch_size < 1:
        raise VibesError("Batch size must be at least 1")
    target_name = name if new_name is None else new_name
    if not target_name:
        raise VibesError("A collection needs a name")
    record = source_collection(source, name)
    if target_name == name and same_database(source, destination):
        raise VibesError(
            f"Cannot copy collection {name!r} onto itself: give it a new name (--as) "
            "or another database (--to)"
        )
    dimensions = record.dimensions or source.store.sample_dimensions(record.id)
    existing = destination.store.get_collection(target_name)
    if existing is not None:
        _check_destination(destination.store, existing, record, dimensions)
    copier = _Copier(source.store, record, destination.store, target_name, dimensions, existing)
    copier.copy(batch_size, progress)
    notes: list[str] = []
    if copier.wrote and copier.target is not None:
        # The same upkeep as after an embed: the approximate index (built, folded or left
        # to a background build) and precomputed related items follow the new rows.
        from .collection import Collection

        Collection(destination, copier.target)._maintain_index(notes)
    return CopyStats(**copier.counts, warnings=tuple(notes))


def same_database(first: Database, second: Database) -> bool:
    """Whether two databases are one (the same file, or the same URL)."""
    if first is second or first.store is second.store:
        return True
    a, b = first.path, second.path
    if is_server_url(a) or is_server_url(b) or a.startswith("file:") or b.startswith("file:"):
        return a == b
    if ":memory:" in (a, b):
        return False  # each in-memory database is a database of its own
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _check_destination(
    store: Store, found: CollectionRecord, record: CollectionRecord, dimensions: int | None
) -> None:
    """Refuse a destination collection that could not hold the source's vectors as they
    are: another model, another length, another distance."""
    from .models import same_model

    where = f"Collection {found.name!r} in {store.describe()}"
    if found.model != record.model and not (
        same_model(found.model, record.model) or same_model(record.model, found.model)
    ):
        raise ModelMismatchError(f"{where} uses model {found.model}, not {record.model}")
    found_dimensions = found.dimensions or store.sample_dimensions(found.id)
    if None not in (found_dimensions, dimensions) and found_dimensions != dimensions:
        raise DimensionMismatchError(
            f"{where} holds {found_dimensions}-dimensional vectors, not {dimensions}"
        )
    if found.distance != record.distance:
        raise VibesError(f"{where} uses {found.distance} distance, not {record.distance}")


class _Copier:
    """One copy: the passes over source and destination, and what they did."""

    def __init__(
        self,
        source: Store,
        record: CollectionRecord,
        destination: Store,
        name: str,
        dimensions: int | None,
        target: CollectionRecord | None,
    ) -> None:
        self.src = source
        self.record = record
        self.dst = destination
        self.name = name
        self.dimensions = dimensions
        #: The destination collection; None until the first write creates it.
        self.target = target
        self.fulltext = FullText(destination)
        self.counts = {"copied": 0, "updated": 0, "unchanged": 0, "deleted": 0, "documents": 0}
        self.wrote = False

    def copy(self, batch_size: int, progress: Progress | None) -> None:
        # Items first, with their chunk records, then the document records: finishing a
        # document deletes its chunks past its count, so its chunks must be there first.
        self._copy_items(batch_size, progress)
        documents = self._copy_documents(batch_size)
        self._delete_items(batch_size)
        self._delete_documents(documents)
        if self.target is None:
            # An empty source: its copy is an empty collection.
            with self._writing():
                pass

    # -- writing -----------------------------------------------------------------------------

    @contextmanager
    def _writing(
        self, texts: dict[str, str | None] | None = None
    ) -> Iterator[tuple[Transaction, int]]:
        """One write transaction on the destination, creating its collection first if it
        does not exist yet; the full-text index follows what the block wrote (``texts``:
        the written items' text)."""
        with self.dst.transaction() as tx:
            target = self._ensure(tx)
            yield tx, target.id
            self.fulltext.sync(tx, target.id, texts or {})
        # Only once committed: a rolled-back creation created nothing.
        self.target = target
        self.wrote = True

    def _ensure(self, tx: Transaction) -> CollectionRecord:
        record = self.record
        target = self.target
        if target is None:
            target = self.dst.ensure_collection(
                tx, self.name, record.model, self.dimensions, record.distance
            )
            # Another writer may have made it meanwhile, perhaps with another model.
            _check_destination(self.dst, target, record, self.dimensions)
            # A new copy of a collection with a full-text index gets one too (with the
            # destination's default tokenizer: tokenizers are named per backend).
            if (
                self.src.fulltext_state(record.id) is not None
                and self.dst.fulltext_state(target.id) is None
                and self.dst.count(target.id) == 0
            ):
                self.fulltext.create(tx, target.id)
        if target.dimensions is None and self.dimensions is not None:
            # Collections made by llm record no dimensions.
            self.dst.set_dimensions(tx, target.id, self.dimensions)
            target = replace(target, dimensions=self.dimensions)
        return target

    # -- the passes --------------------------------------------------------------------------

    def _copy_items(self, batch_size: int, progress: Progress | None) -> None:
        total = self.src.count(self.record.id)
        done = 0
        pages = self.src.iter_items(self.record.id, with_vectors=True, page_size=batch_size)
        for page, vectors in pages:
            assert vectors is not None  # asked for
            self._copy_page(page, vectors)
            done += len(page)
            if progress is not None:
                progress(done, total)

    def _copy_page(self, page: list[StoredItem], vectors: np.ndarray) -> None:
        ids = [item.id for item in page]
        source_id = self.record.id
        chunks = self.src.chunk_records(source_id, ids)
        sources = self.src.sources(source_id, ids)
        before: dict[str, StoredItem] = {}
        before_vectors: dict[str, np.ndarray] = {}
        before_chunks: dict[str, ChunkRecord] = {}
        before_sources: dict[str, str] = {}
        if self.target is not None:
            target_id = self.target.id
            before = self.dst.get_items(target_id, ids)
            if before:
                found = self.dst.load_matrix(target_id, self.dimensions, list(before))
                before_vectors = dict(zip(found.ids, found.vectors))
            before_chunks = self.dst.chunk_records(target_id, ids)
            before_sources = self.dst.sources(target_id, ids)

        now = int(time.time())
        writes: list[ItemWrite] = []
        replaced: list[str] = []
        chunk_writes: list[ChunkRecord] = []
        source_writes: dict[str, str | None] = {}
        for row, item in enumerate(page):
            old = before.get(item.id)
            chunk, old_chunk = chunks.get(item.id), before_chunks.get(item.id)
            source = sources.get(item.id)
            # The store's writes keep stored metadata given None, and delete a chunk
            # record only with its item: clearing either takes a delete and a new write.
            clear = old is not None and (
                (_metadata(item) is None and _metadata(old) is not None)
                or (chunk is None and old_chunk is not None)
            )
            rewrite = (
                old is None
                or clear
                or not _same_stored(item, old)
                or not _same_vector(vectors[row], before_vectors.get(item.id))
            )
            if clear:
                replaced.append(item.id)
            if rewrite:
                writes.append(
                    ItemWrite(
                        item.id,
                        vectors[row],
                        item.content,
                        item.content_blob,
                        # Rows written by other tools may lack a hash: copied as they are.
                        cast(bytes, item.content_hash),
                        _metadata(item),
                        # The store does not give an item's time; the copy's is used.
                        now,
                    )
                )
            touched = rewrite
            if chunk is not None and (clear or chunk != old_chunk):
                chunk_writes.append(chunk)
                touched = True
            if clear or source != before_sources.get(item.id):
                source_writes[item.id] = source  # None forgets a source the copy lacks
                touched = True
            kind = "copied" if old is None else "updated" if touched else "unchanged"
            self.counts[kind] += 1
        if not (writes or chunk_writes or source_writes):
            return  # nothing differs: nothing is written, the change log stays put
        texts = {write.id: write.content for write in writes}
        with self._writing(texts) as (tx, target_id):
            if replaced:
                self.dst.delete_items(tx, target_id, replaced)
            self.dst.upsert(tx, target_id, writes)
            self.dst.upsert_chunks(tx, target_id, chunk_writes)
            if source_writes:
                self.dst.set_sources(tx, target_id, source_writes)

    def _copy_documents(self, batch_size: int) -> set[str]:
        """Write the records (and sources) of the chunked documents that differ; returns
        the source's document ids."""
        source_id = self.record.id
        documents = self.src.document_ids(source_id)
        for part in _parts(documents, batch_size):
            records = {d: self.src.document(source_id, d) for d in part}
            sources = self.src.sources(source_id, part)
            before: dict[str, DocumentRecord | None] = {}
            before_sources: dict[str, str] = {}
            if self.target is not None:
                before = {d: self.dst.document(self.target.id, d) for d in part}
                before_sources = self.dst.sources(self.target.id, part)
            # A document without a record is one whose first run was cut short in the
            # source: its chunks are copied, and its record comes when it is finished.
            finish = [
                record
                for d, record in records.items()
                if record is not None and _document_key(record) != _document_key(before.get(d))
            ]
            changed = {d: sources.get(d) for d in part if sources.get(d) != before_sources.get(d)}
            if not (finish or changed):
                continue
            with self._writing() as (tx, target_id):
                for record in finish:
                    self.counts["deleted"] += self.dst.finish_document(tx, target_id, record)
                if changed:
                    self.dst.set_sources(tx, target_id, changed)
            self.counts["documents"] += len(finish)
        return set(documents)

    def _delete_items(self, batch_size: int) -> None:
        """Delete the destination's items that the source does not hold (any more)."""
        if self.target is None:
            return
        target_id = self.target.id
        # Pages of the destination, each looked up in the source by id: memory stays
        # bounded, whatever order each backend sorts ids in.
        for page, _ in self.dst.iter_items(target_id, page_size=batch_size):
            ids = [item.id for item in page]
            present = self.src.get_items(self.record.id, ids)
            gone = [item_id for item_id in ids if item_id not in present]
            if gone:
                with self._writing() as (tx, writing_id):
                    self.counts["deleted"] += self.dst.delete_items(tx, writing_id, gone)

    def _delete_documents(self, keep: set[str]) -> None:
        """Delete the destination's document records (and sources) the source lacks."""
        if self.target is None:
            return
        gone = sorted(d for d in self.dst.document_ids(self.target.id) if d not in keep)
        if gone:
            with self._writing() as (tx, target_id):
                self.counts["deleted"] += self.dst.delete_documents(tx, target_id, gone)


def _metadata(item: StoredItem) -> dict[str, Any] | None:
    # An empty object is stored as no metadata.
    return item.metadata or None


def _canonical(metadata: dict[str, Any] | None) -> str | None:
    # Compared as canonical JSON: key order does not matter, but 1, 1.0 and true differ.
    return json.dumps(metadata, sort_keys=True) if metadata else None


def _same_stored(item: StoredItem, old: StoredItem) -> bool:
    return (
        item.content_hash == old.content_hash
        and item.content == old.content
        and item.content_blob == old.content_blob
        and _canonical(item.metadata) == _canonical(old.metadata)
    )


def _same_vector(vector: np.ndarray, old: np.ndarray | None) -> bool:
    # Bit for bit: a copy holds exactly the source's float32 values (and a NaN, were one
    # stored, would otherwise never compare equal and be rewritten by every re-run).
    return old is not None and vector.shape == old.shape and vector.tobytes() == old.tobytes()


def _document_key(record: DocumentRecord | None) -> tuple[Any, ...] | None:
    if record is None:
        return None
    return (
        record.content_hash,
        record.chunker,
        record.settings,
        _canonical(record.metadata),
        record.stored,
        record.chunk_count,
    )


def _parts(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])

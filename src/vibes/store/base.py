"""The storage interface: what every backend (SQLite today, PostgreSQL next) implements.

Records cross this boundary typed (dataclasses, never positional tuples), vectors cross it
as numpy float32 arrays, and writes happen inside an opaque :class:`Transaction` that only
the backend that made it understands. Backends map their own errors to
:class:`~vibes.errors.VibesError` subclasses, so nothing above ``store/`` needs to know
which database library is underneath.

numpy is imported lazily by the backends; this module only names it for type checkers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ..filters import Filter

__all__ = [
    "Candidates",
    "ChunkRecord",
    "ClusterRecord",
    "Clustering",
    "ChunkText",
    "CollectionInfo",
    "CollectionRecord",
    "DocumentRecord",
    "FullTextState",
    "IndexState",
    "ItemUpdate",
    "ItemWrite",
    "RelatedState",
    "Store",
    "StoredItem",
    "Transaction",
    "VectorMatrix",
]


@dataclass(frozen=True)
class CollectionRecord:
    """A collection as stored: its id, name, model and search settings."""

    id: int
    name: str
    model: str
    dimensions: int | None
    distance: str


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as listed: its name, model, item count and vector dimensions."""

    name: str
    model: str
    count: int
    dimensions: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredItem:
    """What the store holds for one item, less its vector."""

    id: str
    content_hash: bytes | None
    content: str | None
    content_blob: bytes | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class ItemWrite:
    """One item to insert or replace. ``metadata=None`` keeps the stored metadata."""

    id: str
    vector: np.ndarray
    content: str | None
    content_blob: bytes | None
    content_hash: bytes
    metadata: dict[str, Any] | None
    updated: int


@dataclass(frozen=True)
class ItemUpdate:
    """New stored content or metadata for an item whose vector stays; None keeps a field."""

    id: str
    content: str | None
    content_blob: bytes | None
    metadata: dict[str, Any] | None
    updated: int


@dataclass(frozen=True)
class ChunkRecord:
    """Where a chunk (an ordinary item) lies in its document."""

    id: str
    document_id: str
    index: int  # 0-based position among the document's chunks
    start_offset: int | None
    end_offset: int | None
    start_line: int | None
    end_line: int | None
    context: str | None


@dataclass(frozen=True)
class ChunkText:
    """A chunk of a document with its line range and stored text (for ``context=N``)."""

    id: str
    index: int
    start_line: int | None
    end_line: int | None
    content: str | None


@dataclass(frozen=True)
class DocumentRecord:
    """A chunked document: which chunker cut it, with what settings, into how many chunks."""

    document_id: str
    content_hash: bytes | None
    chunker: str
    settings: str | None  # canonical JSON of the chunker's settings
    metadata: dict[str, Any] | None
    stored: int
    chunk_count: int


@dataclass(frozen=True)
class IndexState:
    """What the persisted approximate index of a collection holds."""

    collection_id: int
    kind: str  # "hnsw", or "off" when the user dropped it
    file: str | None
    seq: int  # the last change it includes
    size: int | None
    dimensions: int | None
    model: str | None
    distance: str | None
    params: str | None  # JSON
    built: int | None
    #: The file's seal when it was saved: "size:mtime_ns:crc32" (see index/seal.py).
    seal: str | None = None


@dataclass(frozen=True)
class FullTextState:
    """A collection's full-text index as recorded."""

    collection_id: int
    #: The tokenizer's settings, as the backend names them.
    tokenizer: str
    #: Whether the index keeps its own copy of each text (SQLite before 3.43 cannot
    #: delete from an index that does not).
    keeps_text: bool
    created: int | None
    #: False when the record is there but the index itself is gone (damaged).
    present: bool = True


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster of a stored clustering: its number, name, summary and size."""

    cluster: int
    name: str | None
    summary: str | None
    size: int


@dataclass(frozen=True)
class Clustering:
    """A collection's stored clustering: how it was made (JSON) and its clusters."""

    collection_id: int
    settings: str | None
    created: int | None
    clusters: list[ClusterRecord]


@dataclass(frozen=True)
class RelatedState:
    """A collection's precomputed related items: how many per item, and whether they
    relate chunked documents as wholes."""

    collection_id: int
    n: int
    documents: bool
    built: int | None


@dataclass
class VectorMatrix:
    """Ids and their vectors as one float32 array (row i is ids[i]); with ``keys`` when
    asked for: the stable integer keys approximate indexes use."""

    ids: list[str]
    vectors: np.ndarray
    keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def joined(self, other: VectorMatrix) -> VectorMatrix:
        """These rows, then ``other``'s (keys kept only when both have them)."""
        import numpy as np

        keys = None
        if self.keys is not None and other.keys is not None:
            keys = np.concatenate([self.keys, other.keys])
        if not len(self):
            return VectorMatrix(list(other.ids), other.vectors, keys)
        if not len(other):
            return VectorMatrix(list(self.ids), self.vectors, keys)
        return VectorMatrix(self.ids + other.ids, np.vstack([self.vectors, other.vectors]), keys)


@dataclass
class Candidates:
    """The items a filter lets through: their ids, and their keys where they have one."""

    ids: list[str]
    keys: list[int | None]

    def __len__(self) -> int:
        return len(self.ids)


class Transaction:
    """An open write transaction. Opaque: only the backend that made it reads it."""


class Store(ABC):
    """A database holding collections of embeddings, behind one interface.

    Reads may be called from any thread. Writes take the :class:`Transaction` that
    :meth:`transaction` yields: it commits when the block ends and rolls back (keeping
    every earlier transaction) when it raises, Ctrl-C included.
    """

    #: Where the database is, as the user named it (a path or URL).
    location: str
    #: True when the database can be read but not written.
    readonly: bool = False

    def describe(self) -> str:
        """Where the database is, for messages: never a password."""
        return self.location

    # -- lifecycle ---------------------------------------------------------------------

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """One write transaction, committed whole or rolled back whole."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def time_limit(self, seconds: float) -> AbstractContextManager[None]:
        """Stop this thread's queries that run longer than ``seconds`` inside the block
        (a caller's ``where``, over the web): they fail with :class:`QueryTimeoutError`.
        Backends that cannot stop a query run it to the end."""
        return nullcontext()

    @abstractmethod
    def version(self) -> Hashable:
        """A token that changes whenever any stored vector changes, whoever changed it
        (this process, another one, ``llm``, plain SQL). Caches of vectors key on it."""

    # -- an approximate index the database keeps itself (optional) ------------------------

    #: True for backends that keep approximate vector indexes themselves (PostgreSQL's
    #: pgvector HNSW), which :meth:`build_native_index` and :meth:`search_native` serve;
    #: the others get vibes' own index files beside the database.
    native_indexes: bool = False

    def native_index(self, collection_id: int) -> dict[str, Any] | None:
        """The database's own index of the collection (its name, ``bytes``, whether it
        is ``valid``), or None when it has none."""
        return None

    def build_native_index(
        self,
        collection_id: int,
        dimensions: int,
        distance: str,
        *,
        connectivity: int = 16,
        expansion_add: int = 64,
        vector_type: str = "vector",
    ) -> None:
        """(Re)build the database's own index of the collection, without blocking writers,
        its vectors stored as ``vector_type`` first (``vector``, or ``halfvec``: half)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no indexes of its own")

    def drop_native_index(self, collection_id: int) -> bool:
        """Drop the database's own index of the collection; False when it had none."""
        return False

    def search_native(
        self,
        collection_id: int,
        dimensions: int,
        distance: str,
        queries: np.ndarray,
        k: int,
        *,
        condition: Filter | None = None,
        expansion_search: int = 100,
    ) -> list[list[tuple[str, np.ndarray]]] | None:
        """Up to ``k`` items nearest each query by the database's own index, each with its
        stored vector (the caller scores them), limited to those ``condition`` lets
        through; None when the collection has no usable index."""
        return None

    @abstractmethod
    def sidecar_directory(self) -> Path | None:
        """A directory beside the database for derived files (index files), or None when
        the backend keeps no files of its own."""

    # -- collections -------------------------------------------------------------------

    @abstractmethod
    def get_collection(self, name: str, tx: Transaction | None = None) -> CollectionRecord | None:
        """The collection called ``name`` (read inside ``tx`` when given), or None."""

    @abstractmethod
    def create_collection(
        self, name: str, model_id: str, dimensions: int | None, distance: str = "cosine"
    ) -> CollectionRecord:
        """Create a collection in a transaction of its own; raises if the name is taken."""

    @abstractmethod
    def ensure_collection(
        self,
        tx: Transaction,
        name: str,
        model_id: str,
        dimensions: int | None,
        distance: str = "cosine",
    ) -> CollectionRecord:
        """The collection called ``name``, created inside ``tx`` when missing. Safe when
        several writers create the same collection at once: all get the one record (the
        caller checks that its model is the one it wanted)."""

    @abstractmethod
    def set_dimensions(self, tx: Transaction, collection_id: int, dimensions: int) -> None:
        """Record a collection's dimensions (collections ``llm`` made lack them)."""

    @abstractmethod
    def sample_dimensions(self, collection_id: int) -> int | None:
        """Dimensions read off one stored vector, for collections with none recorded."""

    @abstractmethod
    def list_collections(self) -> list[CollectionInfo]:
        """Every collection with its item count and dimensions, by name."""

    @abstractmethod
    def delete_collection(self, collection_id: int) -> None:
        """Delete a collection with its items, chunks, index state and change log."""

    # -- items -------------------------------------------------------------------------

    @abstractmethod
    def count(self, collection_id: int) -> int: ...

    @abstractmethod
    def get_items(self, collection_id: int, ids: Sequence[str]) -> dict[str, StoredItem]:
        """The stored items among ``ids`` (missing ids are absent from the result)."""

    @abstractmethod
    def get_vector(self, collection_id: int, item_id: str) -> np.ndarray | None: ...

    @abstractmethod
    def vectors_by_hash(
        self, collection_id: int, hashes: Sequence[bytes]
    ) -> dict[bytes, np.ndarray]:
        """A stored vector for each content hash already in the collection."""

    @abstractmethod
    def upsert(self, tx: Transaction, collection_id: int, items: Sequence[ItemWrite]) -> None:
        """Insert or replace items, vectors included."""

    @abstractmethod
    def update_stored(
        self, tx: Transaction, collection_id: int, updates: Sequence[ItemUpdate]
    ) -> None:
        """Refresh the content and metadata of items whose vectors stay."""

    @abstractmethod
    def delete_items(self, tx: Transaction, collection_id: int, ids: Sequence[str]) -> int:
        """Delete items (with the chunk records of those that are chunks); returns how many."""

    @abstractmethod
    def item_ids(self, collection_id: int) -> list[str]: ...

    @abstractmethod
    def load_matrix(
        self,
        collection_id: int,
        dimensions: int | None,
        ids: Sequence[str] | None = None,
        *,
        with_keys: bool = False,
    ) -> VectorMatrix:
        """The vectors of the given items (or of the whole collection) as one float32
        array, decoded in bulk; raises DimensionMismatchError on a vector of another
        length. ``with_keys`` also gives each item's stable key (items without one are
        given one first, so do not call it inside a read-only context)."""

    @abstractmethod
    def iter_items(
        self, collection_id: int, *, with_vectors: bool = False, page_size: int = 10_000
    ) -> Iterator[tuple[list[StoredItem], np.ndarray | None]]:
        """Every item, ordered by id, in pages: (items, their vectors or None). Memory
        stays bounded by the page, whatever the collection's size."""

    @abstractmethod
    def matching(
        self, collection_id: int, condition: Filter, keys: Sequence[int] | None = None
    ) -> Candidates:
        """The items for which ``condition`` holds; with ``keys``, only those among the
        items with these index keys (a few hits to check, not the whole collection). A
        condition the backend cannot evaluate raises FilterError naming the problem."""

    # -- chunked documents ---------------------------------------------------------------

    @abstractmethod
    def document(self, collection_id: int, document_id: str) -> DocumentRecord | None: ...

    @abstractmethod
    def present_chunks(self, collection_id: int, document_id: str) -> int:
        """How many of a document's recorded chunks still have their row in the collection
        (a chunk deleted by ``llm`` or plain SQL leaves its record behind)."""

    @abstractmethod
    def document_ids(self, collection_id: int) -> list[str]: ...

    @abstractmethod
    def chunk_ids(self, collection_id: int) -> list[str]: ...

    @abstractmethod
    def upsert_chunks(
        self, tx: Transaction, collection_id: int, chunks: Sequence[ChunkRecord]
    ) -> None: ...

    @abstractmethod
    def finish_document(self, tx: Transaction, collection_id: int, record: DocumentRecord) -> int:
        """Record a document as chunked and delete its chunks past the new count (left
        from a longer version); returns how many stale chunks went."""

    @abstractmethod
    def delete_documents(
        self, tx: Transaction, collection_id: int, document_ids: Iterable[str]
    ) -> int:
        """Delete documents with all their chunks; returns how many chunks went."""

    @abstractmethod
    def chunk_records(self, collection_id: int, ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """The chunk records of the chunks among ``ids``."""

    @abstractmethod
    def document_chunks(
        self, collection_id: int, document_id: str, first: int, last: int
    ) -> list[ChunkText]:
        """A document's chunks with indexes ``first`` to ``last``, in order."""

    # -- sources -----------------------------------------------------------------------

    @abstractmethod
    def sources(self, collection_id: int, ids: Sequence[str]) -> dict[str, str]:
        """The recorded source of each item or document among ``ids`` that has one."""

    @abstractmethod
    def set_sources(
        self, tx: Transaction, collection_id: int, sources: dict[str, str | None]
    ) -> None:
        """Record where items or documents came from (None forgets it), so that pruning
        only ever removes what the same source wrote earlier."""

    @abstractmethod
    def sourced_ids(self, collection_id: int, source: str) -> list[str]:
        """Every item or document id recorded as coming from ``source``."""

    # -- change log --------------------------------------------------------------------

    @abstractmethod
    def last_change(self, collection_id: int) -> int:
        """The number of the newest logged change to the collection's vectors (0: none)."""

    @abstractmethod
    def changes_since(self, collection_id: int, seq: int) -> tuple[int, list[str]]:
        """The newest change number and the distinct ids changed after ``seq``."""

    @abstractmethod
    def log_position(self, collection_id: int, consumer: str) -> int | None:
        """How far ``consumer`` has read the collection's change log, or None."""

    @abstractmethod
    def advance_log(self, tx: Transaction, collection_id: int, consumer: str, seq: int) -> None:
        """Record that ``consumer`` has applied every change up to ``seq``, and prune the
        log below the lowest position any consumer of the collection still needs."""

    @abstractmethod
    def release_log(self, tx: Transaction, collection_id: int, consumer: str) -> None:
        """``consumer`` no longer reads the collection's log; prune what nobody needs."""

    @abstractmethod
    def prune_log(self, tx: Transaction, collection_id: int) -> None:
        """Drop the changes every consumer has read (all of them when none is registered)."""

    # -- stable keys and approximate-index state ----------------------------------------

    @abstractmethod
    def ensure_keys(self, tx: Transaction, collection_id: int) -> None:
        """Give every item of the collection a stable integer key (items written before
        vibes' triggers existed lack one)."""

    @abstractmethod
    def keys_for_ids(self, collection_id: int, ids: Sequence[str]) -> dict[str, int]: ...

    @abstractmethod
    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]: ...

    @abstractmethod
    def vectors_for_keys(
        self, collection_id: int, dimensions: int | None, keys: Sequence[int]
    ) -> VectorMatrix:
        """The ids, vectors and keys of the collection's items holding ``keys``, in one
        read (what an index's hits need); keys that are no item of this collection (of
        another, or of none) are left out."""

    @abstractmethod
    def index_state(self, collection_id: int) -> IndexState | None: ...

    @abstractmethod
    def save_index_state(self, tx: Transaction, state: IndexState, replacing: str | None) -> bool:
        """Record ``state`` if the recorded file is still ``replacing`` (compare and set),
        so that of two processes updating the same index at once, one wins cleanly."""

    # -- full-text index -------------------------------------------------------------------

    @abstractmethod
    def fulltext_support(self) -> str | None:
        """Why this database cannot keep full-text indexes (None: it can)."""

    @abstractmethod
    def fulltext_state(self, collection_id: int) -> FullTextState | None:
        """The collection's full-text index, or None when it has none."""

    @abstractmethod
    def create_fulltext(self, tx: Transaction, collection_id: int, tokenizer: str) -> None:
        """Create an empty full-text index for the collection (replacing any)."""

    @abstractmethod
    def drop_fulltext(self, tx: Transaction, collection_id: int) -> None:
        """Delete the collection's full-text index and its record."""

    @abstractmethod
    def write_fulltext(
        self, tx: Transaction, collection_id: int, texts: dict[str, str | None]
    ) -> None:
        """Replace the indexed text of items: each id's old entry goes, and its new text
        (None or empty: none) is indexed."""

    @abstractmethod
    def search_fulltext(
        self,
        collection_id: int,
        terms: Sequence[str],
        k: int,
        *,
        syntax: str | None = None,
        candidates: Candidates | None = None,
        budget: int | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best (id, score) for a query, best first, scored by BM25 (higher is
        better). Items holding any of ``terms`` match (those with more, and rarer, rank
        first); ``syntax`` instead passes a query in the backend's own syntax (an invalid
        one raises InputError). With ``candidates``, only those items count. With
        ``budget``, the commonest terms are left out once the documents holding the
        rarer ones add up to more than it (the rarest always stays)."""

    @abstractmethod
    def fulltext_count(self, collection_id: int) -> int:
        """How many items the full-text index holds."""

    @abstractmethod
    def fulltext_missing(self, collection_id: int, ids: Sequence[str]) -> list[str]:
        """The ids among ``ids`` that have no entry in the full-text index."""

    # -- analysis: clusters ------------------------------------------------------------------

    @abstractmethod
    def save_clustering(
        self,
        tx: Transaction,
        collection_id: int,
        settings: str | None,
        clusters: Sequence[ClusterRecord],
        assignments: dict[str, int],
    ) -> None:
        """Record a clustering (replacing any): its clusters and each item's cluster."""

    @abstractmethod
    def clustering(self, collection_id: int) -> Clustering | None:
        """The collection's stored clustering, or None."""

    @abstractmethod
    def cluster_assignments(self, collection_id: int) -> dict[str, int]:
        """Each item's stored cluster, for the items still in the collection."""

    @abstractmethod
    def drop_clustering(self, tx: Transaction, collection_id: int) -> None:
        """Forget the collection's stored clustering."""

    # -- analysis: related items -------------------------------------------------------------

    @abstractmethod
    def related_state(self, collection_id: int) -> RelatedState | None:
        """The collection's precomputed related items, or None when it has none."""

    @abstractmethod
    def save_related_state(self, tx: Transaction, state: RelatedState) -> None:
        """Record how the collection's related items are computed."""

    @abstractmethod
    def write_related(
        self, tx: Transaction, collection_id: int, neighbours: dict[str, list[tuple[str, float]]]
    ) -> None:
        """Replace the related items of each id in ``neighbours`` with its (other id,
        score) pairs, best first (an empty list: none); each pair's rank is its place."""

    @abstractmethod
    def delete_related(self, tx: Transaction, collection_id: int, ids: Sequence[str]) -> None:
        """Forget the related items of ``ids`` (items that are gone)."""

    @abstractmethod
    def drop_related(self, tx: Transaction, collection_id: int) -> None:
        """Forget every related item of the collection, and its state."""

    @abstractmethod
    def related(self, collection_id: int, ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        """The stored related items of each of ``ids`` that has some, best first."""

    @abstractmethod
    def related_at(self, collection_id: int, rank: int) -> dict[str, float]:
        """For every id with more than ``rank`` related items, the score of the one at
        ``rank`` (0: the best). With rank n - 1, each full list's weakest score."""

    @abstractmethod
    def related_pointing_to(self, collection_id: int, ids: Sequence[str]) -> set[str]:
        """The ids whose related items include any of ``ids``."""

    # -- reading rows for ingestion -------------------------------------------------------

    @abstractmethod
    def read_query(
        self, query: str, attach: Sequence[tuple[str, str]] = ()
    ) -> tuple[Iterator[dict[str, Any]], int | None]:
        """Rows of a read-only query in the backend's SQL (``embed-multi --sql``), as
        dicts, with their count when it is cheap to know. Rows stream on a connection of
        their own, so the same database can be written meanwhile."""

"""Retrievers: each answers prepared query vectors with a scored ranking per query.

A retriever returns None when it cannot answer this request (no usable index, a filter
too narrow for a graph to find its items); the pipeline then asks the next one. Why it
could not is added to the request's warnings when the user should know.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..index.manager import EXACT_FILTER_LIMIT, NATIVE_KIND, IndexManager
from ..index.quantize import Quantizer
from ..store.base import Candidates, CollectionRecord, Store, VectorMatrix

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from ..filters import Filter
    from ..index.exact import ExactIndex
    from ..index.scan import QuantizedMatrix

#: (item id, score) pairs, best first.
Ranking = list[tuple[str, float]]


@dataclass
class Retrieval:
    """One request to the retrievers: prepared queries, how many hits, which candidates."""

    target: CollectionRecord
    queries: np.ndarray
    k: int
    candidates: Candidates | None = None
    exact: bool = False
    #: The filter the candidates were found by (retrievers in the database use it).
    condition: Filter | None = None
    warnings: list[str] = field(default_factory=list)
    #: The name of the retriever that answered.
    answered_by: str | None = None


class Retriever(Protocol):
    """Something that ranks a collection's items for query vectors."""

    name: str
    #: True when it takes a search's filter itself (``Retrieval.condition``); otherwise
    #: the pipeline lists the items the filter lets through first (``candidates``).
    filters_in_database: bool

    def retrieve(self, request: Retrieval) -> list[Ranking] | None: ...


class MatrixCache:
    """Each collection's vectors as one matrix, reloaded only after a vector changed
    (by anyone: the store's version covers other processes too). Thread-safe."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        #: (collection id, vector type) -> (store version, matrix)
        self._cache: dict[tuple[int, str], tuple[object, ExactIndex | QuantizedMatrix]] = {}

    def get(
        self, target: CollectionRecord, *, float32: bool = False
    ) -> ExactIndex | QuantizedMatrix | None:
        """The collection's vectors for a scan of them all: the compact copies its index
        is quantised to (``vibes index --quantize``), whose candidates are re-scored from
        float32, or float32 itself (always with ``float32``: exact by construction)."""
        from ..index.exact import ExactIndex

        with self._lock:
            # Read before loading: a write in between only makes the next call reload.
            # The type is part of the key: an index built, rebuilt with another type or
            # dropped (here or in another process) changes it, not the vectors.
            version = self.store.version()
            dtype = "f32" if float32 else self.quantized(target)
            for key in [k for k in self._cache if k[0] == target.id]:
                if key[1] not in ("f32", dtype) or self._cache[key][0] != version:
                    del self._cache[key]  # free old copies before reading new ones
            cached = self._cache.get((target.id, dtype))
            if cached is not None:
                return cached[1]
            found = self.store.load_matrix(target.id, target.dimensions)
            if not found.ids:
                return None
            index: ExactIndex | QuantizedMatrix
            if dtype == "f32":
                index = ExactIndex(found.ids, found.vectors, target.distance)
            else:
                from ..index.scan import QuantizedMatrix

                def fetch(ids: Sequence[str]) -> VectorMatrix:
                    return self.store.load_matrix(target.id, target.dimensions, ids)

                index = QuantizedMatrix(found.ids, found.vectors, target.distance, dtype, fetch)
            del found
            self._cache[(target.id, dtype)] = (version, index)
            return index

    def quantized(self, target: CollectionRecord) -> str:
        """The vector type the collection's index records (``f32`` when it has none)."""
        state = self.store.index_state(target.id)
        return Quantizer.recorded(state.params if state else None, target.distance).dtype

    def forget(self, collection_id: int | None = None) -> None:
        """Drop one collection's matrix, or every one."""
        with self._lock:
            for key in list(self._cache):
                if collection_id is None or key[0] == collection_id:
                    del self._cache[key]


class ExactRetriever:
    """Scores every vector (or every candidate) with one matrix product: always answers."""

    name = "exact"
    filters_in_database = False

    def __init__(self, matrices: MatrixCache) -> None:
        self.matrices = matrices

    def retrieve(self, request: Retrieval) -> list[Ranking] | None:
        # An explicit exact search reads float32: compact copies find candidates by
        # estimates, which near-duplicates can defeat.
        index = self.matrices.get(request.target, float32=request.exact)
        if index is None:
            return [[] for _ in range(request.queries.shape[0])]
        rows = None
        if request.candidates is not None:
            rows = index.positions(request.candidates.ids)
        return index.search_many(request.queries, request.k, rows=rows)


class ApproximateRetriever:
    """The persisted HNSW index with its overlay of recent changes. Its hits come back
    scored again from the stored vectors (IndexManager.search), so its scores are those of
    an exact search; when they disagree with the file's, the file is damaged and the
    exact retriever answers."""

    name = "approximate"
    #: Given a filter rather than the items it lets through, it checks its own hits
    #: against it (in the store), so the pipeline need not list those items first.
    filters_in_database = True

    def __init__(self, indexes: IndexManager) -> None:
        self.indexes = indexes

    def retrieve(self, request: Retrieval) -> list[Ranking] | None:
        if request.exact:
            return None
        candidates = request.candidates
        if candidates is not None and len(candidates) <= EXACT_FILTER_LIMIT:
            return None  # few enough to score them all, exactly
        live, problem = self.indexes.open(request.target)
        if live is not None and request.condition and candidates is None:
            if len(live.hnsw) <= EXACT_FILTER_LIMIT:
                return None  # listing what the filter lets through is cheap: exactly
        if live is not None:
            # Hits come back scored from the stored vectors, or not at all: None when an
            # exact search should answer (the graph fell short, too few of its hits
            # passed the filter, or the file is damaged).
            found, problem = self.indexes.search(
                live, request.queries, request.k, candidates, request.condition
            )
            if found is not None:
                return found
        if problem is not None:
            name = request.target.name
            request.warnings.append(
                f"The index of collection {name!r} {problem}; searching exactly "
                f"instead (run 'vibes index {name} --rebuild')"
            )
        return None


class NativeRetriever:
    """The database's own approximate index (pgvector's HNSW on PostgreSQL), searched in
    the database with the filter applied there (iterative scans: a filtered search
    returns ``k`` hits whenever ``k`` items match). Hits are scored again from their
    stored vectors, as an exact search scores them. Answers nothing on backends that keep
    no index of their own, or for collections without one."""

    name = "native"
    #: It applies a search's filter itself (the pipeline need not list the candidates).
    filters_in_database = True

    def __init__(self, store: Store) -> None:
        self.store = store

    def retrieve(self, request: Retrieval) -> list[Ranking] | None:
        if request.exact or not self.store.native_indexes:
            return None
        target, candidates = request.target, request.candidates
        if candidates is not None and len(candidates) <= EXACT_FILTER_LIMIT:
            return None  # few enough to score them all, exactly
        state = self.store.index_state(target.id)
        if state is None or state.kind != NATIVE_KIND or target.dimensions is None:
            return None
        from ..index.exact import ExactIndex
        from ..index.hnsw import HNSWParams

        depth = HNSWParams.from_json(state.params, target.distance).expansion_search
        found = self.store.search_native(
            target.id,
            target.dimensions,
            target.distance,
            request.queries,
            request.k,
            condition=request.condition,
            expansion_search=depth,
        )
        if found is None:
            request.warnings.append(
                f"The index of collection {target.name!r} is missing or not yet valid; "
                f"searching exactly instead (run 'vibes index {target.name} --rebuild')"
            )
            return None
        available = len(candidates) if candidates is not None else None
        rankings: list[Ranking] = []
        for i, hits in enumerate(found):
            if len(hits) < request.k:
                # Fewer than asked: right only when fewer exist.
                if request.condition and candidates is None:
                    return None  # how many match is unknown: the exact search decides
                if available is None:
                    available = self.store.count(target.id)
                if len(hits) < min(request.k, available):
                    return None
            if not hits:
                rankings.append([])
                continue
            import numpy as np

            exact = ExactIndex(
                [h[0] for h in hits], np.stack([h[1] for h in hits]), target.distance
            )
            rankings.append(exact.search_many(request.queries[i : i + 1], request.k)[0])
        return rankings

"""The one search entry point: queries in, hydrated results (with warnings) out."""

from __future__ import annotations

import warnings as python_warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ItemNotFoundError, VibesError
from ..filters import Filter
from ..index.manager import IndexManager, IndexWarning
from ..items import DocumentMatch, Match, Query, SearchResults, check_count
from ..store.base import Candidates, ChunkRecord, CollectionRecord, Store
from .fusion import fuse
from .retrievers import (
    ApproximateRetriever,
    ExactRetriever,
    MatrixCache,
    Ranking,
    Retrieval,
    Retriever,
)

if TYPE_CHECKING:
    import numpy as np

DOCUMENT_SCORES = ("max", "mean", "sum")

#: Turns query contents into vectors (the collection's model, with its query prefix);
#: returns the vectors and what the model had to say (texts it cut), which the encoder
#: has also issued as Python warnings.
QueryEncoder = Callable[[list[Any]], "tuple[np.ndarray, list[str]]"]


@dataclass
class SearchOptions:
    """How to answer a query. ``filters`` is a compiled :class:`~vibes.filters.Filter`."""

    n: int = 10
    filters: Filter = field(default_factory=Filter)
    min_score: float | None = None
    exact: bool = False
    #: Neighbouring chunks to attach to each chunk hit, on each side.
    context: int = 0
    #: Rank documents by their chunks instead of ranking items.
    documents: bool = False
    document_score: str = "max"
    chunks_per_document: int = 3

    def check(self) -> None:
        check_count(self.n)
        if self.context < 0:
            raise VibesError("The context must be 0 or more chunks")
        if self.document_score not in DOCUMENT_SCORES:
            raise VibesError(
                f"Unknown document score {self.document_score!r}: use {', '.join(DOCUMENT_SCORES)}"
            )
        if self.min_score is not None and not isinstance(self.min_score, (int, float)):
            raise VibesError(f"The minimum score must be a number, not {self.min_score!r}")


class Searcher:
    """Answers searches over the collections of one store. Safe to share between threads."""

    def __init__(self, store: Store, indexes: IndexManager) -> None:
        self.store = store
        self.matrices = MatrixCache(store)
        #: Tried in order for vector search; the first that answers wins.
        self.vector_retrievers: list[Retriever] = [
            ApproximateRetriever(indexes),
            ExactRetriever(self.matrices),
        ]

    def forget(self, collection_id: int | None = None) -> None:
        """Drop cached vectors (a collection was deleted, or the database is closing)."""
        self.matrices.forget(collection_id)

    def search(
        self,
        target: CollectionRecord,
        queries: Sequence[Query],
        options: SearchOptions,
        encode: QueryEncoder | None = None,
    ) -> list[SearchResults[Any]]:
        """Results for each query, best first: :class:`Match` lists, or
        :class:`DocumentMatch` lists with ``options.documents``. ``encode`` embeds text
        queries (needed only when there are some)."""
        options.check()
        notes: list[str] = []
        vectors, skip_ids = self._resolve(target, queries, encode, notes)
        if target.dimensions is None or vectors is None:  # an empty collection
            return [SearchResults([], notes) for _ in queries]
        from ..index.exact import prepare_queries

        prepared = prepare_queries(vectors, target.dimensions, target.distance)
        candidates = None
        if options.filters:
            candidates = self.store.matching(target.id, options.filters)
            if not candidates:
                return [SearchResults([], notes) for _ in queries]
        if options.documents:
            results: list[SearchResults[Any]] = [
                SearchResults(
                    self._documents(target, prepared[i : i + 1], skip, candidates, options, notes)
                )
                for i, skip in enumerate(skip_ids)
            ]
        else:
            rankings = self._rank(target, prepared, options.n, skip_ids, candidates, options, notes)
            results = [
                SearchResults(matches) for matches in self._hydrate(target, rankings, options)
            ]
        for result in results:
            result.warnings = list(notes)
        return results

    # -- steps -------------------------------------------------------------------------------

    def _resolve(
        self,
        target: CollectionRecord,
        queries: Sequence[Query],
        encode: QueryEncoder | None,
        notes: list[str],
    ) -> tuple[np.ndarray | None, list[str | None]]:
        """Query vectors (m, d) in order, and the item each query leaves out."""
        import numpy as np

        vectors: list[Any] = [None] * len(queries)
        skip_ids: list[str | None] = [None] * len(queries)
        texts = [(i, q.text) for i, q in enumerate(queries) if q.text is not None]
        for i, query in enumerate(queries):
            if query.id is not None:
                vector = self.store.get_vector(target.id, query.id)
                if vector is None:
                    raise ItemNotFoundError(f"No item {query.id!r} in collection {target.name!r}")
                vectors[i], skip_ids[i] = vector, query.id
            elif query.vector is not None:
                vectors[i] = np.asarray(query.vector, dtype=np.float32)
            if query.exclude is not None:
                skip_ids[i] = query.exclude
        if texts:
            for _, text in texts:
                if text in ("", b""):
                    raise VibesError("No content to search for")
            if encode is None:
                raise VibesError("Text queries need the collection's model")
            embedded, said = encode([text for _, text in texts])
            notes.extend(said)
            for (i, _), vector in zip(texts, embedded):
                vectors[i] = vector
        if target.dimensions is None:
            return None, skip_ids
        try:
            return np.asarray(vectors, dtype=np.float32), skip_ids
        except ValueError:  # vectors of several lengths
            from ..errors import DimensionMismatchError

            raise DimensionMismatchError(
                f"Query vectors must all have the collection's {target.dimensions} dimensions"
            ) from None

    def retrieve(self, request: Retrieval) -> list[Ranking]:
        """Ask the vector retrievers in order; the first that answers wins."""
        for retriever in self.vector_retrievers:
            found = retriever.retrieve(request)
            if found is not None:
                request.answered_by = retriever.name
                return found
        raise VibesError("No retriever could answer the search")  # the exact one always does

    def _rank(
        self,
        target: CollectionRecord,
        prepared: np.ndarray,
        n: int,
        skip_ids: Sequence[str | None],
        candidates: Candidates | None,
        options: SearchOptions,
        notes: list[str],
    ) -> list[Ranking]:
        """The ``n`` best (id, score) per query, after fusion, skipping and min_score."""
        wanted = n + (1 if any(skip is not None for skip in skip_ids) else 0)
        request = Retrieval(target, prepared, wanted, candidates, options.exact)
        legs = [self.retrieve(request)]  # full-text search will add a leg here
        for message in request.warnings:
            if message not in notes:
                notes.append(message)
                python_warnings.warn(message, IndexWarning, stacklevel=4)
        rankings = []
        for i, skip in enumerate(skip_ids):
            ranking = fuse([leg[i] for leg in legs], wanted)
            ranking = [(item_id, score) for item_id, score in ranking if item_id != skip][:n]
            if options.min_score is not None:
                ranking = [pair for pair in ranking if pair[1] >= options.min_score]
            rankings.append(ranking)
        return rankings

    def _hydrate(
        self,
        target: CollectionRecord,
        rankings: list[Ranking],
        options: SearchOptions,
        chunks: dict[str, ChunkRecord] | None = None,
    ) -> list[list[Match]]:
        """Attach stored content, metadata, chunk positions (and neighbours) to rankings;
        ``chunks`` passes chunk records the caller has already read."""
        ids = list({item_id for ranking in rankings for item_id, _ in ranking})
        stored = self.store.get_items(target.id, ids)
        if chunks is None:
            chunks = self.store.chunk_records(target.id, ids)
        output = []
        for ranking in rankings:
            matches = []
            for item_id, score in ranking:
                found = stored.get(item_id)
                match = Match(
                    item_id,
                    score,
                    found.content if found else None,
                    found.metadata if found else None,
                )
                record = chunks.get(item_id)
                if record is not None:
                    match.document = record.document_id
                    if record.start_line is not None and record.end_line is not None:
                        match.lines = (record.start_line, record.end_line)
                    if options.context:
                        neighbours = self.store.document_chunks(
                            target.id,
                            record.document_id,
                            record.index - options.context,
                            record.index + options.context,
                        )
                        match.context = [
                            {"id": c.id, "lines": [c.start_line, c.end_line], "content": c.content}
                            for c in neighbours
                        ]
                matches.append(match)
            output.append(matches)
        return output

    def _documents(
        self,
        target: CollectionRecord,
        prepared: np.ndarray,
        skip: str | None,
        candidates: Candidates | None,
        options: SearchOptions,
        notes: list[str],
    ) -> list[DocumentMatch]:
        """Documents ranked by their chunks among the hits: widen the chunk search until
        ``n`` documents are found or every item was looked at."""
        n = options.n
        total = self.store.count(target.id)
        k = max(50, n * 10)
        while True:
            (ranking,) = self._rank(
                target, prepared, min(k, max(total, 1)), [skip], candidates, options, notes
            )
            documents = self.store.chunk_records(target.id, [item_id for item_id, _ in ranking])
            groups: dict[str, Ranking] = {}
            for item_id, score in ranking:
                record = documents.get(item_id)
                document = record.document_id if record else item_id
                if document != skip:  # searching by a document leaves it out
                    groups.setdefault(document, []).append((item_id, score))
            if len(groups) >= n or k >= total:
                break
            k *= 4
        combine: dict[str, Callable[[list[float]], float]] = {
            "max": max,
            "sum": sum,
            "mean": lambda scores: sum(scores) / len(scores),
        }
        scored = sorted(
            (
                (float(combine[options.document_score]([s for _, s in hits])), document, hits)
                for document, hits in groups.items()
            ),
            key=lambda entry: -entry[0],
        )[:n]
        shown = [hits[: options.chunks_per_document] for _, _, hits in scored]
        hydrated = self._hydrate(target, shown, options, documents)
        return [
            DocumentMatch(document, score, matches[0].metadata if matches else None, matches)
            for (score, document, _), matches in zip(scored, hydrated)
        ]

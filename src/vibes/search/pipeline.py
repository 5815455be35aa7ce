"""The one search entry point: queries in, hydrated results (with warnings) out."""

from __future__ import annotations

import warnings as python_warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import ItemNotFoundError, VibesError
from ..filters import Filter
from ..index.fulltext import FullText
from ..index.manager import INDEX_KIND, NATIVE_KIND, IndexManager, IndexWarning
from ..items import DocumentMatch, Match, Query, SearchResults, check_count
from ..store.base import Candidates, ChunkRecord, CollectionRecord, Store
from .fusion import RRF_K, LegDetails, check_fusion, fuse
from .retrievers import (
    ApproximateRetriever,
    ExactRetriever,
    MatrixCache,
    NativeRetriever,
    Ranking,
    Retrieval,
    Retriever,
)

if TYPE_CHECKING:
    import numpy as np

    from .rerank import Reranker

DOCUMENT_SCORES = ("max", "mean", "sum")
MODES = ("vector", "text", "hybrid")
#: How hybrid search fuses its legs by default, the vector leg's share, and how many hits
#: each leg gives to fusion (at least ``n``): chosen by measurement on six labelled sets
#: of this machine's man pages and Python docstrings (bench/hybrid_study.py), where a
#: weighted sum of per-leg scaled scores (0.6 vector) over 100 hits a leg beat reciprocal
#: rank fusion (k 10 to 60) by 0.01 to 0.02 nDCG@10, and 20 or 50 hits a leg.
DEFAULT_FUSION = "weighted"
DEFAULT_WEIGHT = 0.6
HYBRID_DEPTH = 100
#: How many of the best hits a re-ranker scores again (at least ``n``).
RERANK_DEPTH = 30
SNIPPET_MARKS = ("**", "**")

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
    #: ``vector`` (the default, as in llm), ``text`` (full-text, BM25) or ``hybrid``.
    mode: str = "vector"
    #: How hybrid search merges its legs: ``weighted`` (each leg's scores scaled to 0..1
    #: over its own hits, then summed with ``weight`` the vector leg's share and the rest
    #: the text leg's) or ``rrf`` (reciprocal rank fusion, ``rrf_k`` its constant).
    fusion: str = DEFAULT_FUSION
    weight: float = DEFAULT_WEIGHT
    rrf_k: int = RRF_K
    #: Hits each leg gives to fusion (None: HYBRID_DEPTH, and never fewer than ``n``).
    depth: int | None = None
    #: Pass the query text to the full-text index in its own syntax (FTS5's operators).
    text_syntax: bool = False
    #: Attach to each hit the best fragment of its stored text, query words marked.
    snippets: bool = False
    snippet_marks: tuple[str, str] = SNIPPET_MARKS
    #: A re-ranker (or the name of one) that scores the best ``rerank_depth`` hits again.
    rerank: Reranker | str | None = None
    rerank_depth: int = RERANK_DEPTH

    def check(self) -> None:
        check_count(self.n)
        if self.mode not in MODES:
            raise VibesError(f"Unknown search mode {self.mode!r}: use {', '.join(MODES)}")
        check_fusion(self.fusion, self.weight)
        for name in ("rrf_k", "rerank_depth", "depth"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise VibesError(f"{name} must be a positive integer, not {value!r}")
        if self.context < 0:
            raise VibesError("The context must be 0 or more chunks")
        if self.document_score not in DOCUMENT_SCORES:
            raise VibesError(
                f"Unknown document score {self.document_score!r}: use {', '.join(DOCUMENT_SCORES)}"
            )
        if self.min_score is not None and not isinstance(self.min_score, (int, float)):
            raise VibesError(f"The minimum score must be a number, not {self.min_score!r}")


@dataclass
class _Plan:
    """How each query of one search is answered: its words for the text leg (None: no
    text leg), and whether any query needs vectors."""

    terms: list[list[str] | None]
    texts: list[str | None]
    vectors: bool
    #: Items the full-text index could not bring up to date (left out of text results).
    unsynced: set[str] = field(default_factory=set)


class Searcher:
    """Answers searches over the collections of one store. Safe to share between threads."""

    def __init__(
        self, store: Store, indexes: IndexManager, fulltext: FullText | None = None
    ) -> None:
        self.store = store
        self.matrices = MatrixCache(store)
        self.fulltext = fulltext or FullText(store)
        #: Tried in order for vector search; the first that answers wins.
        self.vector_retrievers: list[Retriever] = [
            NativeRetriever(store),
            ApproximateRetriever(indexes),
            ExactRetriever(self.matrices),
        ]
        self._rerankers: dict[str, Reranker] = {}

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
        queries (needed only when there are some and a vector leg runs)."""
        options.check()
        notes: list[str] = []
        for query in queries:
            if query.text is not None and query.text in ("", b""):
                raise VibesError("No content to search for")
        plan = self._plan(target, queries, options, notes)
        prepared = None
        skip_ids: list[str | None] = [q.id if q.id is not None else q.exclude for q in queries]
        if plan.vectors:
            vectors, skip_ids = self._resolve(target, queries, encode, notes)
            if target.dimensions is not None and vectors is not None:
                from ..index.exact import prepare_queries

                prepared = prepare_queries(vectors, target.dimensions, target.distance)
        if target.dimensions is None or (prepared is None and plan.vectors):
            return [SearchResults([], notes) for _ in queries]  # an empty collection
        candidates = None
        if options.filters and not self._filters_in_database(target, options):
            candidates = self.store.matching(target.id, options.filters)
            if not candidates:
                return [SearchResults([], notes) for _ in queries]
        plans = [
            _QueryPlan(
                prepared[i : i + 1] if prepared is not None else None,
                plan.terms[i],
                plan.texts[i],
                skip,
                plan.unsynced,
            )
            for i, skip in enumerate(skip_ids)
        ]
        results: list[SearchResults[Any]] = []
        if options.documents:
            for planned in plans:
                results.append(
                    SearchResults(self._documents(target, planned, candidates, options, notes))
                )
        else:
            # The re-ranker sees the best rerank_depth hits; the minimum score then
            # applies to its scores.
            first = options if options.rerank is None else replace(options, min_score=None)
            k = options.n if options.rerank is None else max(options.n, options.rerank_depth)
            ranked = self._rank(target, plans, k, candidates, first, notes)
            for planned, (ranking, details) in zip(plans, ranked):
                if options.rerank is not None:
                    ranking, details = self._rerank(
                        target, planned, ranking, details, options, notes
                    )
                    ranking = _above(ranking[: options.n], options.min_score)
                found = self._hydrate(target, [ranking], options, details=[details])[0]
                self._add_snippets(found, planned, options, notes)
                results.append(SearchResults(found))
        for result in results:
            result.warnings = list(notes)
        return results

    # -- steps -------------------------------------------------------------------------------

    def _plan(
        self,
        target: CollectionRecord,
        queries: Sequence[Query],
        options: SearchOptions,
        notes: list[str],
    ) -> _Plan:
        """Which legs answer each query; falls back to vectors (and says why) when the
        text leg cannot answer."""
        if options.mode == "vector":
            # Query texts serve only snippets and re-ranking here.
            wanted = options.snippets or options.rerank is not None
            texts = [self._query_text(target, q) if wanted else None for q in queries]
            return _Plan([None] * len(queries), texts, True)
        from .text import query_terms

        texts = [self._query_text(target, query) for query in queries]
        problem = self.fulltext.problem(target)
        if problem is not None:
            _note(notes, f"Collection {target.name!r} {problem}; searching by vector only")
            return _Plan([None] * len(queries), texts, True)
        unsynced, message = self.fulltext.catch_up(target)
        if message:
            _note(notes, message)
        terms: list[list[str] | None] = []
        for query, text in zip(queries, texts):
            if text is None:
                if options.mode == "text" and query.id is None:
                    raise VibesError("Text search needs query text, not a vector")
                what = f"Item {query.id!r} has no stored text" if query.id else "The query"
                _note(notes, f"{what} cannot be searched by text; searching by vector only")
                terms.append(None)
                continue
            words = [text] if options.text_syntax else query_terms(text)
            if not words:
                _note(notes, "The query has no words to search for; searching by vector only")
                terms.append(None)
                continue
            terms.append(words)
        vectors = options.mode == "hybrid" or any(t is None for t in terms)
        return _Plan(terms, texts, vectors, unsynced)

    def _query_text(self, target: CollectionRecord, query: Query) -> str | None:
        """The text a query stands for: its own, or an item's stored text."""
        if isinstance(query.text, str):
            return query.text
        if query.id is not None:
            found = self.store.get_items(target.id, [query.id]).get(query.id)
            if found is None:
                raise ItemNotFoundError(f"No item {query.id!r} in collection {target.name!r}")
            return found.content or None
        return None

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

    def _filters_in_database(self, target: CollectionRecord, options: SearchOptions) -> bool:
        """Whether an index applies this search's filter as it searches, so that the
        items the filter lets through need not be listed first: a read of every item's
        metadata, the costliest step of a filtered search on a large collection.
        PostgreSQL's HNSW filters inside its scan (iterative scans); vibes' own index
        checks its hits in the store. When either cannot answer, the items are listed
        then (Searcher.retrieve)."""
        if options.exact or options.documents or options.mode != "vector":
            return False
        state = self.store.index_state(target.id)
        if state is None:
            return False
        return state.kind == INDEX_KIND or (state.kind == NATIVE_KIND and self.store.native_indexes)

    def retrieve(self, request: Retrieval) -> list[Ranking]:
        """Ask the vector retrievers in order; the first that answers wins. A filter left
        to the database that the database's index could not answer is resolved to its
        candidates here, for the retrievers after it."""
        for retriever in self.vector_retrievers:
            if (
                request.condition
                and request.candidates is None
                # (getattr: a retriever written before the attribute existed lists them)
                and not getattr(retriever, "filters_in_database", False)
            ):
                request.candidates = self.store.matching(request.target.id, request.condition)
                if not request.candidates:
                    return [[] for _ in range(request.queries.shape[0])]
            found = retriever.retrieve(request)
            if found is not None:
                request.answered_by = retriever.name
                return found
        raise VibesError("No retriever could answer the search")  # the exact one always does

    def _rank(
        self,
        target: CollectionRecord,
        queries: list[_QueryPlan],
        n: int,
        candidates: Candidates | None,
        options: SearchOptions,
        notes: list[str],
    ) -> list[tuple[Ranking, LegDetails]]:
        """The ``n`` best (id, score) for each query after fusion, skipping and
        min_score, with each hit's rank and score in every leg. The vector leg answers
        every query that uses it at once (one matrix product, one graph search)."""
        wanted = n + (1 if any(q.skip is not None for q in queries) else 0)
        hybrid = any(q.terms is not None and q.vector is not None for q in queries)
        depth = max(wanted, options.depth or HYBRID_DEPTH) if hybrid else wanted
        vector_legs: dict[int, Ranking] = {}
        asking = [
            i
            for i, q in enumerate(queries)
            if q.vector is not None and (options.mode != "text" or q.terms is None)
        ]
        if asking:
            import numpy as np

            stacked = np.concatenate([queries[i].vector for i in asking])
            request = Retrieval(
                target, stacked, depth, candidates, options.exact, options.filters or None
            )
            vector_legs = dict(zip(asking, self.retrieve(request)))
            for message in request.warnings:
                if _note(notes, message, warn=False):
                    python_warnings.warn(message, IndexWarning, stacklevel=4)
        weights = {"vector": options.weight, "text": 1.0 - options.weight}
        output = []
        for i, query in enumerate(queries):
            legs: dict[str, Ranking] = {}
            if i in vector_legs:
                legs["vector"] = vector_legs[i]
            if query.terms is not None:
                legs["text"] = self.fulltext.search(
                    target,
                    [] if options.text_syntax else query.terms,
                    depth,
                    syntax=query.terms[0] if options.text_syntax else None,
                    candidates=candidates,
                    exclude=query.unsynced,
                )
            ranking, details = fuse(
                legs, wanted, method=options.fusion, k=options.rrf_k, weights=weights
            )
            ranking = [pair for pair in ranking if pair[0] != query.skip][:n]
            if len(legs) < 2:
                details = {}  # one leg: its score is the hit's score, nothing more to say
            output.append((_above(ranking, options.min_score), details))
        return output

    def _reranker(self, chosen: Reranker | str) -> Reranker:
        if not isinstance(chosen, str):
            return chosen
        if chosen not in self._rerankers:
            from .rerank import get_reranker

            self._rerankers[chosen] = get_reranker(chosen)
        return self._rerankers[chosen]

    def _rerank(
        self,
        target: CollectionRecord,
        query: _QueryPlan,
        ranking: Ranking,
        details: LegDetails,
        options: SearchOptions,
        notes: list[str],
    ) -> tuple[Ranking, LegDetails]:
        """Score the best ``rerank_depth`` hits again with the re-ranker (the rest follow
        in their order); each hit keeps its first-stage rank and score."""
        if options.rerank is None or not ranking:
            return ranking, details
        if query.text is None:
            _note(notes, "Re-ranking needs query text; the results are not re-ranked")
            return ranking, details
        reranker = self._reranker(options.rerank)
        head = ranking[: max(options.rerank_depth, 1)]
        stored = self.store.get_items(target.id, [item_id for item_id, _ in head])
        texts = {i: item.content for i, item in stored.items() if item.content}
        scorable = [item_id for item_id, _ in head if item_id in texts]
        if len(scorable) < len(head):
            _note(
                notes,
                f"{len(head) - len(scorable)} hits have no stored text to re-rank; "
                "they follow the re-ranked ones",
            )
        scores = reranker.rerank(query.text, [texts[item_id] for item_id in scorable])
        reranked = sorted(zip(scorable, (float(s) for s in scores)), key=lambda p: -p[1])
        if options.mode == "hybrid" and query.terms is not None:
            stage = "fused"
        else:
            stage = "text" if options.mode == "text" and query.terms is not None else "vector"
        merged: LegDetails = {}
        for rank, (item_id, score) in enumerate(ranking, 1):
            merged[item_id] = dict(details.get(item_id, {}))
            merged[item_id][stage] = (rank, score)
        for rank, (item_id, score) in enumerate(reranked, 1):
            merged[item_id]["rerank"] = (rank, score)
        rest = [pair for pair in head if pair[0] not in texts] + ranking[len(head) :]
        return reranked + rest, merged

    def _add_snippets(
        self, matches: list[Match], query: _QueryPlan, options: SearchOptions, notes: list[str]
    ) -> None:
        """The best fragment of each hit's text for the query's words."""
        if not options.snippets or not matches:
            return
        from .text import query_terms, snippet

        if query.text is None:
            _note(notes, "Snippets need query text; none were made")
            return
        terms = query_terms(query.text)
        missing = 0
        for match in matches:
            if match.content:
                match.snippet = snippet(match.content, terms, marks=options.snippet_marks)
            else:
                missing += 1
        if missing:
            _note(
                notes,
                f"{missing} hits have no stored text to take a snippet from "
                "(embed with --store to keep it)",
            )

    def _hydrate(
        self,
        target: CollectionRecord,
        rankings: list[Ranking],
        options: SearchOptions,
        chunks: dict[str, ChunkRecord] | None = None,
        details: list[LegDetails] | None = None,
    ) -> list[list[Match]]:
        """Attach stored content, metadata, chunk positions (and neighbours) to rankings;
        ``chunks`` passes chunk records the caller has already read, ``details`` each
        ranking's leg details."""
        ids = list({item_id for ranking in rankings for item_id, _ in ranking})
        stored = self.store.get_items(target.id, ids)
        if chunks is None:
            chunks = self.store.chunk_records(target.id, ids)
        output = []
        for position, ranking in enumerate(rankings):
            legs = details[position] if details else {}
            names = sorted({name for found in legs.values() for name in found}, key=_stage_order)
            matches = []
            for item_id, score in ranking:
                found = stored.get(item_id)
                match = Match(
                    item_id,
                    score,
                    found.content if found else None,
                    found.metadata if found else None,
                )
                if legs:
                    mine = legs.get(item_id, {})
                    match.legs = {
                        name: {"rank": mine[name][0], "score": mine[name][1]}
                        if name in mine
                        else None
                        for name in names
                    }
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
        query: _QueryPlan,
        candidates: Candidates | None,
        options: SearchOptions,
        notes: list[str],
    ) -> list[DocumentMatch]:
        """Documents ranked by their chunks among the hits: widen the chunk search until
        ``n`` documents are found or every item was looked at."""
        n = options.n
        skip = query.skip
        total = self.store.count(target.id)
        k = max(50, n * 10)
        while True:
            ((ranking, details),) = self._rank(
                target, [query], min(k, max(total, 1)), candidates, options, notes
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
        if options.rerank is not None:
            # The best chunks are scored again, then grouped again.
            best = sorted((pair for hits in groups.values() for pair in hits), key=lambda p: -p[1])
            ranking, details = self._rerank(target, query, best, details, options, notes)
            regrouped: dict[str, Ranking] = {}
            for item_id, score in ranking[: max(options.rerank_depth, 1)]:
                record = documents.get(item_id)
                regrouped.setdefault(record.document_id if record else item_id, []).append(
                    (item_id, score)
                )
            groups = regrouped
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
        hydrated = self._hydrate(target, shown, options, documents, [details] * len(shown))
        for matches in hydrated:
            self._add_snippets(matches, query, options, notes)
        return [
            DocumentMatch(document, score, matches[0].metadata if matches else None, matches)
            for (score, document, _), matches in zip(scored, hydrated)
        ]


@dataclass
class _QueryPlan:
    """One query as the legs see it."""

    vector: np.ndarray | None
    terms: list[str] | None
    text: str | None
    skip: str | None
    unsynced: set[str]


_STAGES = ("vector", "text", "fused", "rerank")


def _stage_order(name: str) -> int:
    return _STAGES.index(name) if name in _STAGES else len(_STAGES)


def _above(ranking: Ranking, min_score: float | None) -> Ranking:
    """The hits scoring at least ``min_score`` (all of them when it is None)."""
    if min_score is None:
        return ranking
    return [pair for pair in ranking if pair[1] >= min_score]


class SearchWarning(UserWarning):
    """A search answered otherwise than asked (text search fell back to vectors, hits
    without text for snippets or re-ranking)."""


def _note(notes: list[str], message: str, *, warn: bool = True) -> bool:
    """Add ``message`` to a search's warnings once, issuing it as a
    :class:`SearchWarning` too unless ``warn`` is False; True when it was new."""
    if message in notes:
        return False
    notes.append(message)
    if warn:
        python_warnings.warn(message, SearchWarning, stacklevel=4)
    return True

"""A named collection of embeddings: the façade over writing, reading and searching it.

Writing lives in :mod:`vibes.writing`, searching in :mod:`vibes.search`, storage behind
:class:`vibes.store.Store`; this class ties them to one collection and one model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ItemNotFoundError, SettingsError, UnknownModelError, VibesError
from .filters import Filter, build_filter
from .index.fulltext import FullText
from .index.hnsw import HNSWParams
from .index.manager import IndexManager, IndexWarning
from .items import DocumentMatch, EmbedStats, Item, Match, Query, SearchResults
from .models import EmbeddingModel, get_model
from .models.base import embed_array, warn_truncation
from .search import Searcher, SearchOptions
from .search.pipeline import DEFAULT_FUSION, DEFAULT_WEIGHT
from .store.base import CollectionRecord, IndexState, Store
from .writing import NOT_CREATED, Writer, check_same_collection

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from .analysis.classify import Classification, Evaluation
    from .analysis.cluster import ClusterResult
    from .analysis.duplicates import Pair
    from .analysis.plot import PlotResult
    from .analysis.related import RelatedStatus
    from .analysis.score import AxisScore
    from .search.rerank import Reranker

__all__ = ["Collection", "DuplicateWarning"]

#: What search() passes on to the pipeline (SearchOptions' fields, less n and filters).
_SEARCH_OPTIONS = frozenset(SearchOptions.__dataclass_fields__) - {"n", "filters"}


class DuplicateWarning(UserWarning):
    """An input repeated an id: the last item with it was kept."""


class Services(Protocol):
    """What a collection needs from its database (a :class:`~vibes.Database` is one)."""

    store: Store
    indexes: IndexManager
    fulltext: FullText
    searcher: Searcher


class Collection:
    """A collection of embeddings in a :class:`~vibes.Database`, all made by one model.

    Get one with ``db.collection(name, model=...)``.
    """

    def __init__(
        self, database: Services, record: CollectionRecord, model: EmbeddingModel | None = None
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
        """The stored id; :data:`~vibes.writing.NOT_CREATED` (0) until the first write
        creates the collection (or another writer does)."""
        self._adopt_existing()
        return self._record.id

    @property
    def exists(self) -> bool:
        """Whether the collection is in the database yet: a new collection is created by
        its first successful write, so a failed first write leaves nothing behind."""
        return self.id != NOT_CREATED

    def _adopt_existing(self) -> None:
        if self._record.id == NOT_CREATED:
            found = self._store.get_collection(self._record.name)
            if found is not None:
                self._record = check_same_collection(found, self._record)

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
        self._adopt_existing()
        if self._record.dimensions is None:
            return self._store.sample_dimensions(self.id)
        return self._record.dimensions

    @property
    def record(self) -> CollectionRecord:
        """The collection as stored, its dimensions filled in from a vector when unrecorded."""
        self._adopt_existing()
        if self._record.dimensions is None:
            return replace(self._record, dimensions=self.dimensions)
        return self._record

    @property
    def _store(self) -> Store:
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
        items: Iterable[Item | dict[str, Any] | tuple[Any, ...]],
        *,
        store: bool = False,
        batch_size: int | None = None,
        on_batch: Callable[[int, EmbedStats], None] | None = None,
        chunk: str | None = None,
        chunk_options: dict[str, Any] | None = None,
        fulltext: bool = True,
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

        A collection created by this call gets a full-text index (for ``mode="text"`` and
        ``"hybrid"`` searches) unless ``fulltext=False``; the index of a collection that
        has one is kept in step with every batch, with the text embedded even when it is
        not stored.

        What went wrong without stopping the run (texts the model cut, an index that could
        not be updated) is in the returned stats' ``warnings`` and issued as warnings.
        """
        try:
            model_limit = self.model().batch_size
        except UnknownModelError:
            model_limit = None  # the model is only needed if something must be embedded
        self._adopt_existing()
        writer = Writer(self._store, self._record, self.model, fulltext=fulltext)
        try:
            stats = writer.write(
                items,
                store=store,
                batch_size=batch_size,
                on_batch=on_batch,
                chunk=chunk,
                chunk_options=chunk_options,
                model_batch_size=model_limit,
            )
        finally:
            self._record = writer.target  # dimensions recorded by the first write
        if stats.duplicates:
            warnings.warn(stats.warnings[-1], DuplicateWarning, stacklevel=2)
        if self.exists and (
            stats.embedded or stats.reused or stats.stale_chunks or stats.empty_documents
        ):
            self._maintain_index(stats.warnings)
        if self._model is not None:
            message = warn_truncation(self._model)
            if message:
                stats.warnings.append(message)
        return stats

    def _maintain_index(self, notes: list[str] | None = None) -> None:
        """Bring what is derived from the vectors up to date after a write: the index,
        and precomputed related items when few items changed (a large write leaves them to
        the next read or ``vibes related``). A failure (a full disk, say) loses nothing:
        the rows are committed, and the change log lets the next attempt catch up."""
        from .analysis.related import INLINE_CHANGES, update_related

        try:
            self.database.indexes.maintain(self.record)
        except (OSError, RuntimeError, ValueError, SettingsError) as error:
            self._not_updated(
                notes,
                f"The index of collection {self.name!r} was not updated ({error}); "
                "searches stay correct and the next write retries",
            )
        try:
            update_related(self, limit=INLINE_CHANGES)
        except VibesError as error:
            self._not_updated(
                notes,
                f"The related items of collection {self.name!r} were not updated ({error}); "
                "the next read applies the changes",
            )

    @staticmethod
    def _not_updated(notes: list[str] | None, message: str) -> None:
        """Say that a write's upkeep failed: in the write's stats and as a warning."""
        if notes is not None:
            notes.append(message)
        # (user's call -> embed_multi/delete_items/prune -> _maintain_index -> here)
        warnings.warn(message, IndexWarning, stacklevel=4)

    def delete_items(self, ids: Sequence[str]) -> int:
        """Delete items by id, all or none: raises if any id is missing. The id of a chunked
        document deletes all its chunks. Returns how many rows went."""
        self._adopt_existing()  # created by another handle since this one was made
        deleted = Writer(self._store, self._record, self.model).delete_items(ids)
        self._maintain_index()
        return deleted

    def stale(
        self, keep: Iterable[str], *, prefix: str = "", source: str | None = None
    ) -> list[str]:
        """What :meth:`prune` with the same arguments would delete: document and item ids."""
        if not self.exists:
            return []
        return Writer(self._store, self._record, self.model).stale(
            keep, prefix=prefix, source=source
        )

    def prune(self, keep: Iterable[str], *, prefix: str = "", source: str | None = None) -> int:
        """Delete the documents and items not in ``keep``: with ``source`` (what
        ``embed-multi --files DIR GLOB --prune`` passes), only those that source wrote;
        without it, every one whose id starts with ``prefix``. Returns rows deleted."""
        if not self.exists:
            return 0
        deleted = Writer(self._store, self._record, self.model).prune(
            keep, prefix=prefix, source=source
        )
        if deleted:
            self._maintain_index()
        return deleted

    def delete(self) -> None:
        """Delete the collection, every item in it, and its index."""
        state = self._store.index_state(self.id)
        self._store.delete_collection(self.id)
        self.database.searcher.forget(self.id)
        self.database.indexes.forget(self.id, state)

    # -- reading -------------------------------------------------------------------------

    def get(self, id: str) -> Match | None:
        """The stored item ``id`` (score 1.0), or None."""
        found = self._store.get_items(self.id, [id]).get(id)
        if found is None:
            return None
        return Match(id, 1.0, found.content, found.metadata)

    def vector(self, id: str) -> list[float]:
        """The stored vector of item ``id``."""
        vector = self._store.get_vector(self.id, id)
        if vector is None:
            raise ItemNotFoundError(f"No item {id!r} in collection {self.name!r}")
        return [float(x) for x in vector.tolist()]

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Every item's id and the vectors as one (n, d) float32 array, row i for id i,
        decoded in bulk (no per-row Python work)."""
        found = self._store.load_matrix(self.id, self.dimensions)
        return found.ids, found.vectors

    def items(self, *, vectors: bool = False) -> Iterator[dict[str, Any]]:
        """Every item as a dict of id, content, metadata (and vector), ordered by id.
        Read in pages, so memory stays bounded whatever the collection's size."""
        for page, matrix in self._store.iter_items(self.id, with_vectors=vectors):
            rows = matrix.tolist() if matrix is not None else None
            for position, stored in enumerate(page):
                item: dict[str, Any] = {
                    "id": stored.id,
                    "content": stored.content,
                    "metadata": stored.metadata,
                }
                if rows is not None:
                    item["vector"] = rows[position]
                yield item

    # -- index -------------------------------------------------------------------------------

    def index_status(self) -> dict[str, Any]:
        """The approximate index: kind, size, parameters, staleness (``vibes index``)."""
        return self.database.indexes.status(self.record)

    def index_state(self) -> IndexState | None:
        """The recorded approximate index, or None when the collection never had one."""
        return self._store.index_state(self.id)

    def build_index(self, **params: int | str) -> IndexState:
        """Build the approximate index from every stored vector now, keeping the current
        parameters unless given: ``connectivity``, ``expansion_add``, ``expansion_search``,
        and ``quantize`` (``"f32"``, ``"f16"`` or ``"i8"``: the type the graph and the
        exact scan keep their vectors in; hits are always scored from float32)."""
        from .index import background

        indexes = self.database.indexes
        directory = indexes.build_directory
        build: contextlib.AbstractContextManager[bool]
        if directory is None or not background.in_background():
            build = contextlib.nullcontext(True)
        else:  # after a background build of it, not at the same time
            build = background.holding(directory, self.id, wait=True)
        with build:
            if self._store.native_indexes:  # PostgreSQL builds and keeps its own
                return indexes.build_native(self.record, **params)
            state = self._store.index_state(self.id)
            chosen = HNSWParams.from_json(state.params if state else None, self.distance, **params)
            return indexes.build(self.record, chosen)

    def set_search_depth(self, depth: int) -> IndexState:
        """Search the approximate index ``depth`` deep from now on, in every process,
        without rebuilding it: deeper finds more of the true nearest items, shallower
        answers sooner (``vibes index C --expansion-search N``)."""
        return self.database.indexes.set_search_depth(self.record, depth)

    def drop_index(self) -> None:
        """Delete the approximate index; searches run exactly until the next build."""
        self.database.indexes.drop(self.record)

    # -- full-text index -------------------------------------------------------------------

    def fulltext_status(self) -> dict[str, Any]:
        """The full-text index: ``state`` (``ready``, ``none``, ``damaged`` or
        ``unavailable``), its tokenizer, items indexed, items without text, changes
        pending (``vibes index``)."""
        return self.database.fulltext.status(self.record)

    def build_fulltext(self, tokenizer: str | None = None) -> dict[str, Any]:
        """(Re)build the full-text index from the stored text; returns its status. Items
        stored without text are indexed when they are embedded again (an unchanged
        re-run of the same ``embed_multi`` does it without calling the model)."""
        return self.database.fulltext.build(self.record, tokenizer)

    def drop_fulltext(self) -> None:
        """Delete the full-text index; text and hybrid searches then use vectors only."""
        self.database.fulltext.drop(self.record)

    # -- searching -------------------------------------------------------------------------

    def search(
        self,
        query: Query | str | bytes | Sequence[float] | np.ndarray,
        n: int = 10,
        *,
        filters: Iterable[str] | dict[str, Any] | Filter | None = None,
        prefix: str | None = None,
        where: str | None = None,
        min_score: float | None = None,
        exact: bool = False,
        context: int = 0,
        documents: bool = False,
        document_score: str = "max",
        chunks_per_document: int = 3,
        mode: str = "vector",
        fusion: str = DEFAULT_FUSION,
        weight: float = DEFAULT_WEIGHT,
        snippets: bool = False,
        rerank: Reranker | str | None = None,
        **options: Any,
    ) -> SearchResults[Any]:
        """The one search entry point: the ``n`` best results for ``query``, best first.

        ``query`` is a text (or bytes, for image models), a vector, or a :class:`Query`
        (``Query(id="doc-1")`` searches by a stored item, leaving it out). Options:
        ``filters`` (expressions such as ``"year>=2020"``, or a ``{key: value}`` dict),
        ``prefix`` (ids starting with it, literally), ``where`` (an SQLite condition on
        ``embeddings``), ``min_score``, ``exact=True`` to bypass the approximate index,
        ``context=N`` to add to each chunk the N chunks before and after it, and
        ``documents=True`` to rank documents by their chunks (``document_score``: ``max``,
        ``mean`` or ``sum``; up to ``chunks_per_document`` chunks shown each).

        ``mode``: ``"vector"`` (the default), ``"text"`` (the full-text index, BM25: the
        query's words, any of them, never a syntax error; ``text_syntax=True`` passes
        FTS5's own syntax) or ``"hybrid"`` (both, fused by ``fusion``: ``"weighted"``, the
        default, sums each leg's scores scaled to 0..1 with ``weight`` (0.6) the vector
        leg's share; ``"rrf"`` is reciprocal rank fusion; each hit's ``legs`` gives every
        leg's rank and score; ``depth`` hits per leg, default 100). ``snippets=True``
        gives each hit the best fragment of its stored text with the query's words marked
        (``snippet_marks``). ``rerank`` (a re-ranker or its name) scores the best
        ``rerank_depth`` (default 30) hits again. When text search cannot answer (no
        full-text index, a query without words) the search uses vectors and says so in
        ``warnings``.

        Returns :class:`Match` objects (:class:`DocumentMatch` with ``documents=True``) in
        a list whose ``warnings`` say what the caller should know (index fallback, a cut
        query).
        """
        return self.search_many(
            [query],
            n,
            filters=filters,
            prefix=prefix,
            where=where,
            min_score=min_score,
            exact=exact,
            context=context,
            documents=documents,
            document_score=document_score,
            chunks_per_document=chunks_per_document,
            mode=mode,
            fusion=fusion,
            weight=weight,
            snippets=snippets,
            rerank=rerank,
            **options,
        )[0]

    def search_many(
        self,
        queries: Sequence[Query | str | bytes | Sequence[float] | np.ndarray] | np.ndarray,
        n: int = 10,
        *,
        filters: Iterable[str] | dict[str, Any] | Filter | None = None,
        prefix: str | None = None,
        where: str | None = None,
        **options: Any,
    ) -> list[SearchResults[Any]]:
        """:meth:`search` for many queries at once: one model call, one matrix product."""
        if len(queries) == 0:
            return []
        unknown = sorted(set(options) - _SEARCH_OPTIONS)
        if unknown:
            raise VibesError(
                f"Unknown search option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
            )
        search_options = SearchOptions(
            n=n, filters=build_filter(filters, prefix=prefix, where=where), **options
        )
        return self.database.searcher.search(
            self.record, [Query.of(q) for q in queries], search_options, self._encode_queries
        )

    def _encode_queries(self, contents: list[Any]) -> tuple[np.ndarray, list[str]]:
        """Search queries through the model (with its query prefix), saying what it cut."""
        vectors = embed_array(self.model(), contents, query=True)
        message = warn_truncation(self.model(), stacklevel=5)
        return vectors, [message] if message else []

    # Conveniences over search(), kept for the API users already have.

    def similar(self, content: str | bytes, n: int = 10, **options: Any) -> list[Match]:
        """The ``n`` items most similar to ``content``, best first (options as for
        :meth:`search`)."""
        return self.search(Query(text=content), n, **options)

    def similar_batch(
        self, contents: Sequence[str | bytes], n: int = 10, **options: Any
    ) -> list[list[Match]]:
        """:meth:`similar` for many queries at once: one model call, one matrix product."""
        return list(self.search_many([Query(text=c) for c in contents], n, **options))

    def similar_by_id(self, id: str, n: int = 10, **options: Any) -> list[Match]:
        """The ``n`` items most similar to the stored item ``id`` (itself left out)."""
        return self.search(Query(id=id), n, **options)

    def similar_by_vector(
        self, vector: Sequence[float], n: int = 10, *, skip_id: str | None = None, **options: Any
    ) -> list[Match]:
        """The ``n`` items most similar to ``vector``, best first; ``skip_id`` leaves one out."""
        return self.search(Query(vector=vector, exclude=skip_id), n, **options)

    def similar_by_vectors(
        self, vectors: Sequence[Sequence[float]] | np.ndarray, n: int = 10, **options: Any
    ) -> list[list[Match]]:
        """The ``n`` most similar items for each of many query vectors, in one pass."""
        return list(self.search_many([Query(vector=v) for v in vectors], n, **options))

    def similar_documents(
        self, content: str | bytes, n: int = 10, *, document_score: str = "max", **options: Any
    ) -> list[DocumentMatch]:
        """The ``n`` documents whose chunks best match ``content``, each with its matching
        chunks (the best ``chunks_per_document``, default 3). ``document_score``: ``max``
        (the best chunk, the default), ``mean`` or ``sum`` of the scores of its chunks among
        the hits. Other options as for :meth:`search`."""
        return self.search(
            Query(text=content), n, documents=True, document_score=document_score, **options
        )

    def similar_documents_by_vector(
        self, vector: Sequence[float], n: int = 10, *, skip_id: str | None = None, **options: Any
    ) -> list[DocumentMatch]:
        """:meth:`similar_documents` for a query vector; ``skip_id`` leaves one out."""
        return self.search(Query(vector=vector, exclude=skip_id), n, documents=True, **options)

    def similar_documents_by_id(self, id: str, n: int = 10, **options: Any) -> list[DocumentMatch]:
        """:meth:`similar_documents` for a stored item or document (left out of the results)."""
        return self.search(Query(id=id), n, documents=True, **options)

    def ask(self, question: str, **options: Any) -> Any:
        """Answer ``question`` with a chat model from the passages that match it best,
        citing them: an :class:`~vibes.ask.Answer` (``answer``, ``sources``, ``model``,
        ``usage``), or with ``stream=True`` a :class:`~vibes.ask.StreamingAnswer` to
        iterate over. Options (``llm``, ``n``, ``mode``, ``budget``, ``min_score``,
        ``system``, ``template``, ``history``, filters...): see :func:`vibes.ask.ask`."""
        from .ask import ask

        return ask(self, question, **options)

    # -- analysis (vibes.analysis; numpy and scikit-learn are imported when called) ----------

    def cluster(self, n: int | None = None, **options: Any) -> ClusterResult:
        """Group the items in ``n`` clusters (k-means; ``algorithm="hdbscan"`` finds how
        many), each named by its distinctive words (``summary=True``: and by an LLM);
        ``store=True`` saves them. See :func:`vibes.analysis.cluster.cluster_collection`."""
        from .analysis.cluster import cluster_collection

        return cluster_collection(self, n, **options)

    def plot(self, output: str | Path, **options: Any) -> PlotResult:
        """Draw the items on a 2D map (``.html`` or ``.png``; ``method``, ``color``...).
        See :func:`vibes.analysis.plot.plot_collection`."""
        from .analysis.plot import plot_collection

        return plot_collection(self, output, **options)

    def score_axis(
        self, low: Sequence[str], high: Sequence[str], **options: Any
    ) -> list[AxisScore]:
        """Each item's position between two meanings (0 at ``low``, 1 at ``high``; each a
        list of texts, ``id:ITEM`` or ``file:PATH`` terms, averaged). See
        :func:`vibes.analysis.score.score_axis`."""
        from .analysis.score import score_axis

        return score_axis(self, low, high, **options)

    def classify(self, labels: dict[str, str], **options: Any) -> Classification:
        """Give every unlabelled item the label of the nearest label centroid, with a
        confidence. See :func:`vibes.analysis.classify.classify`."""
        from .analysis.classify import classify

        return classify(self, labels, **options)

    def evaluate_classifier(self, labels: dict[str, str], **options: Any) -> Evaluation:
        """Held-out accuracy of :meth:`classify` on ``labels`` (``test_size``, ``seed``)."""
        from .analysis.classify import evaluate_classifier

        return evaluate_classifier(self, labels, **options)

    def duplicates(self, threshold: float = 0.95, **options: Any) -> list[Pair]:
        """Pairs of items scoring at least ``threshold``, best first, found without an
        n × n matrix. See :func:`vibes.analysis.duplicates.find_duplicates`."""
        from .analysis.duplicates import find_duplicates

        return find_duplicates(self, threshold, **options)

    def similar_expression(self, expression: str, n: int = 10, **options: Any) -> list[Match]:
        """The items nearest ``'germany + paris - france'``: the signed sum of its terms'
        vectors (texts, ``id:ITEM``, ``file:PATH``); options as for :meth:`search`."""
        from .analysis.arithmetic import expression_search

        return expression_search(self, expression, n, **options)

    def build_related(self, n: int = 10, *, documents: bool = False) -> RelatedStatus:
        """Precompute every item's ``n`` nearest neighbours into the database; later
        changes are applied as they come. See :mod:`vibes.analysis.related`."""
        from .analysis.related import build_related

        return build_related(self, n, documents=documents)

    def related(self, id: str, n: int | None = None) -> list[tuple[str, float]]:
        """The precomputed related items of ``id``: (other id, score), best first."""
        from .analysis.related import read_related

        found, notes = read_related(self, id, n)
        for message in notes:
            warnings.warn(message, IndexWarning, stacklevel=2)
        return found

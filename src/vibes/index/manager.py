"""Keeps each collection's approximate index in step with the stored vectors.

The index is a usearch file beside the database (the store's sidecar directory), recorded
with the number of the last change it includes. The store logs every change to a vector
(whoever makes it); this manager is one reader of that log (consumer ``index``), and a
search applies the changes made since the file was saved as an overlay: changed and
deleted items are masked out of the graph ("tombstones"), and their current vectors are
searched exactly ("delta"). So the index is never trusted while stale, and adding a few
items never rebuilds it. When the overlay grows past a share of the index, the next write
folds it into a new file.

A file that is missing, corrupt, or built for another model, dimension or distance is
bypassed (the caller searches exactly and says why) and rebuilt by the next write or
``vibes index COLLECTION --rebuild``. A file can also be damaged in ways usearch does not
notice when opening it (garbage where its vectors or keys were): every search re-scores
its hits from the stored vectors, so such a file never returns a wrong score, and the
first search or status check that catches it marks it damaged for good (see
:meth:`IndexManager._mark_damaged`).

The manager works on :class:`~vibes.store.CollectionRecord` values, never on
:class:`~vibes.Collection` objects: it sits below them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SettingsError, VibesError
from ..store.base import Candidates, CollectionRecord, IndexState, Store, VectorMatrix
from .hnsw import HNSWParams
from .quantize import RESCORE_MARGIN, Quantizer
from .seal import check_seal, make_seal

if TYPE_CHECKING:
    import numpy as np

    from ..filters import Filter
    from .exact import ExactIndex
    from .hnsw import HNSWIndex

# numpy, usearch and the index modules load on first use: `vibes --help` stays instant.

#: Collections with at least this many items get an index automatically; below it, exact
#: search of the whole matrix is as fast (see bench/bench_index.py).
DEFAULT_MIN_ITEMS = 20_000
#: The overlay is folded into a new file once it exceeds both of these.
COMPACT_MIN_CHANGES = 2_000
COMPACT_FRACTION = 0.05
#: Filtered searches with at most this many matching items are answered exactly.
EXACT_FILTER_LIMIT = 20_000
#: How deep a search checks the graph's hits against a filter before it lists the items
#: the filter lets through instead: 7,680 hits for n=10 (a filter that 1 item in 300
#: passes still finds 10 there, most of the time), a few milliseconds of lookups.
CONDITION_GRAPH_LIMIT = 7_680
#: Searches that would ask the graph for more than this share of its items are answered
#: exactly: a graph search that deep costs more than one matrix product over every vector,
#: and HNSW does not promise to reach every item (asked for all 400 of 400, it may return
#: 398).
EXACT_FRACTION = 0.2
#: Graph entries ``vibes index`` compares with the stored vectors, and how many of them
#: it searches for, to tell a damaged file from a sound one: a few hundred rows read by
#: id, whatever the collection's size.
CHECK_SAMPLE = 256
CHECK_SEARCHES = 16
INDEX_KIND = "hnsw"
OFF_KIND = "off"
#: An index file found to give wrong items or scores: never searched again, rebuilt by
#: the next write or ``vibes index --rebuild``.
DAMAGED_KIND = "damaged"
#: What a file recorded as damaged (by this process or another) is said to be.
DAMAGED = "file is damaged (found so by a search or a check; it is no longer used)"
#: This manager's name among the readers of the change log.
LOG_CONSUMER = "index"
#: An index the database keeps itself (pgvector's HNSW on PostgreSQL): no file, no
#: overlay; the database updates it with every write.
NATIVE_KIND = "native"
#: The graph parameters of a new database-kept index: pgvector's own defaults (16 links,
#: a build depth of 64), searched deeper than its default of 40 for recall.
NATIVE_DEFAULTS = {"connectivity": 16, "expansion_add": 64, "expansion_search": 100}
#: How database-kept indexes store vectors for each ``--quantize`` (pgvector has no int8).
NATIVE_TYPES = {"f32": "vector", "f16": "halfvec"}


class IndexWarning(UserWarning):
    """An index could not be used; the search ran exactly instead."""


class IndexFileError(VibesError, OSError):
    """The index directory or file cannot be written (a file in the directory's place, no
    permission, a full disk). A VibesError, so the command line says it in one line; an
    OSError, so a write to the collection, which updates its index only after committing,
    reports it as a warning and succeeds (see ``Collection._maintain_index``)."""


def min_items() -> int:
    """The size from which collections are indexed: ``$VIBES_INDEX_MIN_ITEMS`` or 20,000."""
    value = os.environ.get("VIBES_INDEX_MIN_ITEMS")
    return int(value) if value and value.isdigit() else DEFAULT_MIN_ITEMS


#: The most threads $VIBES_INDEX_THREADS may ask for.
MAX_BUILD_THREADS = 1024


def build_threads() -> int:
    """Threads a graph build or fold uses: ``$VIBES_INDEX_THREADS``, else every core.

    One thread builds the same graph from the same items every time (usearch inserts in
    order); several build a slightly different one on each run."""
    value = os.environ.get("VIBES_INDEX_THREADS", "").strip()
    if not value:
        return os.cpu_count() or 1
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_BUILD_THREADS:
        raise SettingsError(
            f"$VIBES_INDEX_THREADS must be a whole number from 1 to {MAX_BUILD_THREADS}, "
            f"not {value!r}"
        )
    return int(value)


@dataclass(frozen=True)
class Overlay:
    """The changes since an index file was saved, replaced whole on refresh, so that a
    search in another thread reads one consistent overlay."""

    #: The last change applied.
    seq: int = 0
    #: Keys of changed and deleted items, masked out of the graph.
    tombstones: frozenset[int] = frozenset()
    #: The current vectors of changed and added items, searched exactly.
    delta: ExactIndex | None = None
    delta_keys: np.ndarray | None = None
    #: Items the graph and the delta hold together, after masking.
    count: int = 0


@dataclass
class LiveIndex:
    """An opened index file plus the overlay of changes made since it was saved."""

    state: IndexState
    hnsw: HNSWIndex
    #: The store's version the overlay was refreshed at.
    version: object = None
    overlay: Overlay = field(default_factory=Overlay)

    @property
    def seq(self) -> int:
        return self.overlay.seq

    @property
    def tombstones(self) -> frozenset[int]:
        return self.overlay.tombstones

    @property
    def delta(self) -> ExactIndex | None:
        return self.overlay.delta

    @property
    def delta_keys(self) -> np.ndarray | None:
        return self.overlay.delta_keys

    @property
    def pending(self) -> int:
        return len(self.overlay.tombstones)


#: For each query, (item id, score) pairs, best first.
Hits = list[list[tuple[str, float]]]


def _make_directory(directory: Path) -> None:
    """Create the index directory, or say in one line why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise IndexFileError(
            f"Cannot keep index files in {directory}: it is a file, not a directory; "
            "move or delete it"
        ) from None
    except OSError as error:
        raise IndexFileError(
            f"Cannot keep index files in {directory} ({error.strerror or error})"
        ) from None


def _remove(path: Path) -> None:
    """Delete an index file that is no longer needed. Failing to is not worth failing the
    write or drop that replaced it, whose state is already recorded: say so and go on."""
    try:
        path.unlink(missing_ok=True)
    except NotADirectoryError:
        pass  # its directory is not one (a file in its place): nothing to delete
    except OSError as error:
        warnings.warn(
            f"Could not delete the old index file {path} ({error.strerror or error}); "
            "delete it by hand",
            IndexWarning,
            stacklevel=3,
        )


class IndexManager:
    """Builds, opens, refreshes, compacts and searches the indexes of one database.

    Safe to share between threads: opening and refreshing an index, and searching its
    graph, happen under one lock (a graph search takes a fraction of a millisecond).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._live: dict[int, LiveIndex] = {}
        #: Files found damaged, by collection: (file name, why), for when the database
        #: cannot record it (read-only, or locked at that moment).
        self._damaged: dict[int, tuple[str | None, str]] = {}
        self._lock = threading.RLock()
        #: Called with progress messages (index builds); the command line prints them.
        self.notify: Callable[[str], None] | None = None
        #: Told (items added, items to add) while a graph is built; returns False to stop.
        self.progress: Callable[[int, int], bool] | None = None

    @property
    def directory(self) -> Path | None:
        return self.store.sidecar_directory()

    @property
    def build_directory(self) -> Path | None:
        """Where background builds keep their lock, progress and log: the index directory,
        or for a database that keeps its own indexes (a server), a directory in vibes'
        user directory named after the database (processes on other machines are kept
        apart by the database's own lock: see build_native)."""
        if not self.store.native_indexes:
            return self.directory
        import hashlib

        from ..config import user_dir

        digest = hashlib.sha256(self.store.location.encode()).hexdigest()[:16]
        return user_dir() / "builds" / digest

    def _say(self, message: str) -> None:
        if self.notify is not None:
            self.notify(message)

    # -- reading ----------------------------------------------------------------------------

    def problem(self, target: CollectionRecord, state: IndexState) -> str | None:
        """Why the recorded index cannot serve this collection, or None."""
        if state.model != target.model:
            return f"was built for model {state.model}, not {target.model}"
        if state.dimensions != target.dimensions:
            return f"has {state.dimensions} dimensions, the collection {target.dimensions}"
        if state.distance != target.distance:
            return f"was built for {state.distance} distance, not {target.distance}"
        directory = self.directory
        if directory is None or not state.file:
            return "file is missing"
        path = directory / state.file
        try:
            if directory.exists() and not directory.is_dir():
                return f"file cannot be reached ({directory} is a file, not a directory)"
            if not path.is_file():
                return "file is missing"
        except OSError as error:  # a directory that cannot be searched (permissions)
            return f"file cannot be reached ({error.strerror or error}: {path})"
        return None

    def open(self, target: CollectionRecord) -> tuple[LiveIndex | None, str | None]:
        """The collection's index refreshed with every change since it was saved; or
        (None, why) when the recorded index cannot be used; (None, None) when it has none."""
        with self._lock:
            return self._open(target)

    def _open(self, target: CollectionRecord) -> tuple[LiveIndex | None, str | None]:
        state = self.store.index_state(target.id)
        if state is None or state.kind not in (INDEX_KIND, DAMAGED_KIND):
            self._live.pop(target.id, None)
            return None, None
        damaged = self._damaged.get(target.id)
        if damaged is not None:
            if damaged[0] == state.file:  # found by this process: say what was found
                self._live.pop(target.id, None)
                return None, damaged[1]
            del self._damaged[target.id]  # replaced since: the new file is judged afresh
        if state.kind == DAMAGED_KIND:
            self._live.pop(target.id, None)
            return None, DAMAGED
        cached = self._live.get(target.id)
        if cached is None or cached.state != state:
            problem = self.problem(target, state)
            hnsw = None
            if problem is None:
                from .hnsw import HNSWIndex

                # problem() found the directory and the file, and the distance equal to the
                # collection's.
                directory = self.directory
                assert directory is not None and state.file is not None
                try:
                    # Checked before the native library maps the file: damaged links
                    # can crash it, which nothing afterwards could catch.
                    broken = check_seal(directory / state.file, state.seal)
                    if broken is not None:
                        problem = f"file is damaged ({broken})"
                        self._mark_damaged(state, problem)
                        return None, problem
                    quantizer = Quantizer.from_params(state.params, target.distance)
                    hnsw = HNSWIndex.open(
                        directory / state.file, target.distance, quantizer=quantizer
                    )
                    # A file keeps its links, not its search depth: the record does.
                    params = HNSWParams.from_json(state.params, target.distance)
                    hnsw.set_expansion_search(params.expansion_search)
                    if len(hnsw) != state.size or hnsw.dimensions != state.dimensions:
                        problem = "file does not match its record (corrupt or replaced)"
                except OSError as error:
                    problem = f"file cannot be read ({error.strerror or error})"
                except Exception as error:  # usearch raises several kinds on damaged files
                    problem = f"file cannot be read ({type(error).__name__}: {error})"
            if problem is not None or hnsw is None:
                self._live.pop(target.id, None)
                return None, problem
            cached = LiveIndex(state, hnsw)
            self._live[target.id] = cached
        version = self.store.version()
        if cached.version != version:
            self._refresh(target, cached)
            cached.version = version
        return cached, None

    def _refresh(self, target: CollectionRecord, live: LiveIndex) -> None:
        import numpy as np

        from .exact import ExactIndex

        seq, changed = self.store.changes_since(target.id, live.state.seq)
        if not changed:
            live.overlay = Overlay(seq, count=len(live.hnsw))
            return
        tombstones = frozenset(self.store.keys_for_ids(target.id, changed).values())
        found = self.store.load_matrix(target.id, live.state.dimensions, changed, with_keys=True)
        masked = int(np.count_nonzero(live.hnsw.contains(np.fromiter(tombstones, np.uint64))))
        count = len(live.hnsw) - masked + len(found)
        if not found.ids:
            live.overlay = Overlay(seq, tombstones, count=count)
            return
        delta = ExactIndex(found.ids, found.vectors, live.state.distance or target.distance)
        live.overlay = Overlay(seq, tombstones, delta, found.keys, count)

    def search(
        self,
        live: LiveIndex,
        queries: np.ndarray,
        n: int,
        candidates: Candidates | None = None,
        condition: Filter | None = None,
    ) -> tuple[Hits | None, str | None]:
        """The ``n`` best (id, score) for each prepared query from the graph and the
        overlay, scored again from the stored vectors; and why the file is damaged, when
        those scores show it (the file is then marked damaged).

        A filter comes as the items it lets through (``candidates``), or as the
        ``condition`` itself: then only the graph's hits are checked against it, in the
        store, and the search goes deeper until ``n`` pass (a filter most items pass
        costs a few lookups instead of a read of every item's metadata).

        The hits are None when the caller should search exactly instead: the file is
        damaged, the search would ask the graph for a large share of its items, or the
        graph found fewer items than the collection (or the filter's candidates) hold;
        with a ``condition``, also when too few of the graph's hits pass it.
        """
        size = len(live.hnsw)
        # Read the version before the overlay: a refresh in between makes them disagree,
        # and a disagreement never marks the file damaged (see _verify).
        version, overlay = live.version, live.overlay
        collection_id = live.state.collection_id
        allowed: set[int] | None = None
        if candidates is not None:
            allowed = {key for key in candidates.keys if key is not None}
            condition = None
        fraction = 1.0 if allowed is None else max(len(allowed) / max(size, 1), 1e-9)
        # Ask for a little more than needed (more when a filter passes few items); masked-out
        # items rarely come up, and when too few remain the loop asks for more.
        k = math.ceil((n + 10) / fraction * 1.5)
        limit = max(k, 50_000 if condition is None else CONDITION_GRAPH_LIMIT)
        # A compact graph's order is approximate: candidates beyond n are kept (as the
        # exact scan keeps them), and re-scoring from the stored vectors picks the n best.
        keep = n if not live.hnsw.quantizer.compact else 2 * n + RESCORE_MARGIN
        #: With a condition: the keys checked against it (each read once), those passing.
        checked_keys: set[int] = set()
        passing: set[int] = set()
        deepened = False
        graph: list[list[tuple[int, float]]] = []
        while True:
            if k > EXACT_FRACTION * size:
                return None, None
            with self._lock:
                found = live.hnsw.search(queries, k)
            if condition is not None:
                hit_keys = {int(key) for keys, _ in found for key in keys}
                self._check(
                    collection_id, condition, hit_keys - overlay.tombstones, checked_keys, passing
                )
                allowed = passing
            graph = [
                [
                    (int(key), float(score))
                    for key, score in zip(keys, scores)
                    if int(key) not in overlay.tombstones
                    and (allowed is None or int(key) in allowed)
                ][:keep]
                for keys, scores in found
            ]
            short = not all(len(r) >= n for r in graph)
            if condition is None:
                if not short:
                    break
                if k >= limit:
                    return None, None
                k *= 4
                continue
            # As deep as a list of the items that pass would have made it (the share
            # that passed so far stands for the fraction), so that the n best that
            # pass are found as surely.
            passed = max(len(passing), 1) / max(len(checked_keys), 1)
            wanted = min(math.ceil((n + 10) / passed * 1.5), limit)
            if not short and (k >= wanted or deepened):
                break
            if k >= limit:
                return None, None
            deepened = not short  # once: the share moves a little with every round
            k = wanted if not short else min(max(wanted, k * 4), limit)
        # (id, score, the graph's key or None for a hit of the exact delta)
        hits: list[list[tuple[str, float, int | None]]] = [[] for _ in graph]
        state = live.state
        # The graph's hits with their stored vectors, in one read: what _verify scores.
        stored = self.store.vectors_for_keys(
            state.collection_id, state.dimensions, sorted({key for r in graph for key, _ in r})
        )
        assert stored.keys is not None
        names = {int(key): item_id for item_id, key in zip(stored.ids, stored.keys)}
        unknown = [key for r in graph for key, _ in r if key not in names]
        if unknown:
            return self._damage(
                live, version, f"it gave items that are not the collection's ({len(unknown)} keys)"
            )
        for result, r in zip(hits, graph):
            result.extend((names[key], score, key) for key, score in r)
        if overlay.delta is not None:
            delta = overlay.delta
            rows = None if candidates is None else delta.positions(candidates.ids)
            if condition is not None and overlay.delta_keys is not None:
                rows = self._passing_delta_rows(
                    collection_id, condition, queries, n, overlay, checked_keys, passing
                )
            for result, extra in zip(hits, delta.search_many(queries, n, rows=rows)):
                result.extend((item_id, score, None) for item_id, score in extra)
                result.sort(key=lambda hit: -hit[1])
                del result[keep:]
            from_delta = sorted({item_id for r in hits for item_id, _, key in r if key is None})
            if from_delta:  # read again too: the stored vector is the one to score
                more = self.store.load_matrix(
                    state.collection_id, state.dimensions, from_delta, with_keys=True
                )
                stored = stored.joined(more)
        checked, problem = self._verify(live, version, queries, hits, stored)
        if checked is None:
            return None, problem
        checked = [ranking[:n] for ranking in checked]
        expected = min(n, overlay.count if candidates is None else len(candidates))
        if any(len(ranking) < expected for ranking in checked):
            return None, None  # the graph missed some: an exact search finds them all
        return checked, None

    def _check(
        self,
        collection_id: int,
        condition: Filter,
        keys: set[int],
        checked: set[int],
        passing: set[int],
    ) -> None:
        """Check those of ``keys`` not in ``checked`` against ``condition`` in the store
        (one lookup each), adding them to ``checked`` and those that pass to ``passing``."""
        unseen = keys - checked
        if unseen:
            through = self.store.matching(collection_id, condition, sorted(unseen)).keys
            checked |= unseen
            passing.update(int(key) for key in through if key is not None)

    def _passing_delta_rows(
        self,
        collection_id: int,
        condition: Filter,
        queries: np.ndarray,
        n: int,
        overlay: Overlay,
        checked: set[int],
        passing: set[int],
    ) -> np.ndarray:
        """Positions in the overlay's delta of the items that pass ``condition``, among
        enough of each query's best that its ``n`` best passing ones are there: the
        delta's best hits are checked, deeper until n pass, not all of it (up to 5% of
        the index: 50,000 lookups a search at a million items)."""
        import numpy as np

        delta, delta_keys = overlay.delta, overlay.delta_keys
        assert delta is not None and delta_keys is not None
        key_of = dict(zip(delta.ids, (int(key) for key in delta_keys)))
        depth = min(len(delta.ids), 4 * (n + 10))
        while True:
            ranked = delta.search_many(queries, depth)
            self._check(
                collection_id,
                condition,
                {key_of[item_id] for ranking in ranked for item_id, _ in ranking},
                checked,
                passing,
            )
            enough = all(
                sum(key_of[item_id] in passing for item_id, _ in ranking) >= n for ranking in ranked
            )
            if enough or depth >= len(delta.ids):
                break
            depth = min(len(delta.ids), depth * 4)
        through = [item_id for item_id, key in key_of.items() if key in passing]
        return delta.positions(through) if through else np.empty(0, dtype=np.int64)

    def _verify(
        self,
        live: LiveIndex,
        version: object,
        queries: np.ndarray,
        hits: list[list[tuple[str, float, int | None]]],
        stored: VectorMatrix,
    ) -> tuple[Hits | None, str | None]:
        """The hits scored again from ``stored`` (their stored vectors, with keys: the
        scores an exact search gives), best first; or (None, why) when the graph's hits
        are not the collection's items or its scores are not theirs. Only the hits of
        each query are read back, so this costs a fraction of the graph search."""
        import numpy as np

        from .exact import ExactIndex, scores_agree

        state = live.state
        assert state.dimensions is not None and state.distance is not None  # as opened
        assert stored.keys is not None
        keys = dict(zip(stored.ids, (int(key) for key in stored.keys)))
        exact = ExactIndex(stored.ids, stored.vectors, state.distance)
        checked: Hits = []
        for i, result in enumerate(hits):
            missing = [
                item_id
                for item_id, _, key in result
                if item_id not in keys or (key is not None and keys[item_id] != key)
            ]
            if missing:
                return self._damage(
                    live, version, f"it gave items that are not the collection's ({missing[0]!r})"
                )
            rows = exact.positions([item_id for item_id, _, _ in result])
            scores = exact.scores(queries[i : i + 1], rows)[0]
            from_graph = np.fromiter((key is not None for _, _, key in result), dtype=bool)
            if from_graph.any():
                claimed = np.fromiter((score for _, score, _ in result), dtype=np.float64)
                # What a sound file claims: the exact scores of the vectors as it keeps
                # them (compact copies, for a quantised graph).
                query, kept = live.hnsw.expected_scores(queries[i], exact.matrix[rows])
                tolerance = live.hnsw.quantizer.tolerance
                agree = (
                    scores_agree(state.distance, query, kept, claimed, tolerance) | ~from_graph
                )  # the delta's hits were scored from stored vectors already
                if not agree.all():
                    wrong = int(np.argmin(agree))
                    return self._damage(
                        live,
                        version,
                        f"it scored item {result[wrong][0]!r} {claimed[wrong]:.6g}, "
                        f"where its stored vector scores {float(scores[wrong]):.6g}",
                    )
            order = np.argsort(-scores, kind="stable")
            checked.append([(result[j][0], float(scores[j])) for j in order])
        return checked, None

    def _damage(self, live: LiveIndex, version: object, detail: str) -> tuple[None, str | None]:
        """Hits that disagree with the stored vectors: the file is damaged, unless a
        vector changed meanwhile (another writer), which alone can explain it; either
        way the caller searches exactly."""
        if self.store.version() != version:
            return None, None
        problem = f"file is damaged ({detail})"
        self._mark_damaged(live.state, problem)
        return None, problem

    def _mark_damaged(self, state: IndexState, problem: str) -> None:
        """Never search this file again, in this process or any other, until it is
        rebuilt. A file caught giving one wrong score cannot be trusted for the rest:
        re-scoring keeps the scores of the hits honest, but not the choice of hits (a
        damaged graph may pass over the best items without a trace), so a demanding user
        wants exact answers from now on, and a warning on each search saying why, not a
        graph search that is thrown away every time. Nor would they want a search, a read,
        to spend minutes rebuilding. So the damage is recorded with the index state (every
        process sees it), the file is kept for whoever wants to look at it, and the next
        write or ``vibes index --rebuild`` replaces it (maintain() rebuilds any index it
        cannot open)."""
        with self._lock:
            self._damaged[state.collection_id] = (state.file, problem)
            cached = self._live.get(state.collection_id)
            if cached is not None and cached.state == state:
                del self._live[state.collection_id]
        if self.store.readonly:
            return  # this process remembers; `vibes index` in another one checks again
        try:
            with self.store.transaction() as tx:
                # Compare and set: a file another process saved meanwhile is not marked.
                marked = dataclasses.replace(state, kind=DAMAGED_KIND)
                self.store.save_index_state(tx, marked, state.file)
        except VibesError:  # locked by a writer: this process remembers, as above
            pass

    def check(self, target: CollectionRecord, live: LiveIndex) -> str | None:
        """Why the opened file is damaged, or None: a sample of its vectors is compared
        with the stored ones, and a few stored items are searched for by their vectors.
        Cheap (a few hundred rows read by id, whatever the size), for ``vibes index``; a
        damaged file is marked as such. It cannot prove a file sound: a search still
        checks its own hits."""
        import numpy as np

        from .exact import SCORE_SLACK, ExactIndex

        state = live.state
        assert state.dimensions is not None and state.distance is not None  # as opened
        version, overlay = live.version, live.overlay
        sample = [int(key) for key in live.hnsw.sample_keys(CHECK_SAMPLE)]
        sample = [key for key in sample if key not in overlay.tombstones]
        if not sample:
            return None
        stored = self.store.vectors_for_keys(target.id, state.dimensions, sample)
        assert stored.keys is not None
        by_key = {int(key): row for row, key in enumerate(stored.keys)}
        strays = [key for key in sample if key not in by_key]
        if strays:
            return self._damage(
                live, version, f"it holds items that are not the collection's ({len(strays)} keys)"
            )[1]
        expected = ExactIndex.prepare(stored.vectors, state.distance)
        quantizer = live.hnsw.quantizer
        kept = quantizer.encode(expected).astype(np.float32)  # as the file keeps them
        saved = live.hnsw.vectors(np.asarray(sample, dtype=np.uint64))
        for key, vector in zip(sample, saved):
            want = kept[by_key[key]]
            if quantizer.dtype == "i8":
                # Steps, not sizes: one step where float error tipped a rounding.
                same = vector is not None and bool(np.abs(vector - want).max() <= 1)
            else:
                rtol, atol = (1e-4, 1e-6) if quantizer.dtype == "f32" else (1e-3, 1e-3)
                same = vector is not None and np.allclose(
                    vector, want, rtol=rtol, atol=atol * float(np.linalg.norm(want)) + 1e-12
                )
            if not same:
                item_id = stored.ids[by_key[key]]
                return self._damage(
                    live, version, f"its vector of item {item_id!r} is not the stored one"
                )[1]
        # The graph's links: stored items searched for by their own vectors come up first
        # (or one of several equal vectors does, so a miss compares scores).
        probes = sample[:: max(1, len(sample) // CHECK_SEARCHES)][:CHECK_SEARCHES]
        queries = np.stack([expected[by_key[key]] for key in probes])
        with self._lock:
            found = live.hnsw.search(queries, 10)
        missed = [
            (position, int(keys[0]) if len(keys) else None)
            for position, (key, (keys, _scores)) in enumerate(zip(probes, found))
            if key not in {int(k) for k in keys}
        ]
        read = self.store.vectors_for_keys(
            target.id, state.dimensions, [top for _, top in missed if top is not None]
        )
        assert read.keys is not None
        fresh = ExactIndex(read.ids, read.vectors, state.distance)
        rows = {int(key): row for row, key in enumerate(read.keys)}
        lost = 0
        for position, top in missed:
            row = rows.get(top) if top is not None else None
            if row is None:
                lost += 1
                continue
            # Nothing should beat the item itself by more than float error.
            query = queries[position].astype(np.float64)
            vector = fresh.matrix[row].astype(np.float64)
            scale = float(np.linalg.norm(query) * max(np.linalg.norm(vector), 1.0))
            if state.distance == "euclidean":
                gap = float(np.linalg.norm(vector - query))
            else:
                gap = float(query @ query - vector @ query)
            if gap > quantizer.tolerance * scale + SCORE_SLACK:
                lost += 1
        if lost * 2 > len(probes):
            return self._damage(
                live, version, f"searches for {lost} of {len(probes)} stored items missed them"
            )[1]
        return None

    # -- writing ----------------------------------------------------------------------------

    def build(self, target: CollectionRecord, params: HNSWParams | None = None) -> IndexState:
        """Build the collection's index from every stored vector, replacing any other."""
        if self.store.native_indexes:
            return self.build_native(target, **(params.to_dict() if params else {}))
        directory = self.directory
        if directory is None:
            raise VibesError("An in-memory database cannot keep an index")
        from .exact import ExactIndex
        from .hnsw import HNSWIndex

        _make_directory(directory)  # before the build: a build can take minutes
        old = self.store.index_state(target.id)
        if params is None:
            params = HNSWParams.from_json(old.params if old else None, target.distance)
        # Changes after this number are applied as the overlay, even if the vectors read
        # below already include them: re-applying a change is harmless. Registering as a
        # reader of the log at that number keeps those changes from being pruned meanwhile
        # (an older index already holds a lower position, which it keeps until replaced).
        with self.store.transaction() as tx:
            self.store.ensure_keys(tx, target.id)
            seq = self.store.last_change(target.id)
            if self.store.log_position(target.id, LOG_CONSUMER) is None:
                self.store.advance_log(tx, target.id, LOG_CONSUMER, seq)
        try:
            found = self.store.load_matrix(target.id, target.dimensions, with_keys=True)
            self._say(f"Building the search index of {target.name!r} ({len(found):,} items)")
            assert found.keys is not None
            keys = found.keys
            prepared = ExactIndex.prepare(found.vectors, target.distance)
            del found  # the prepared copy is all the build needs (a million rows: 1.5 GB)
            hnsw = HNSWIndex.build(
                keys,
                prepared,
                target.distance,
                params,
                threads=build_threads(),
                progress=self.progress,
                quantizer=Quantizer.fit(prepared, target.distance, params.quantize),
            )
            return self._save(target, hnsw, seq, params, old)
        except BaseException:
            if old is None or old.kind != INDEX_KIND:
                # No index reads the log after all: let it be pruned again.
                with self.store.transaction() as tx:
                    self.store.release_log(tx, target.id, LOG_CONSUMER)
            raise

    def _save(
        self,
        target: CollectionRecord,
        hnsw: HNSWIndex,
        seq: int,
        params: HNSWParams,
        old: IndexState | None,
    ) -> IndexState:
        directory = self.directory
        assert directory is not None
        _make_directory(directory)
        name = f"c{target.id}-{seq}-{secrets.token_hex(4)}.usearch"
        temporary = directory / (name + ".tmp")
        try:
            hnsw.save(temporary)
            os.replace(temporary, directory / name)
            seal = make_seal(directory / name)
        except (OSError, RuntimeError) as error:  # usearch raises RuntimeError on I/O
            _remove(temporary)
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise IndexFileError(
                f"Cannot write the index file {directory / name} ({reason})"
            ) from None
        state = IndexState(
            target.id,
            INDEX_KIND,
            name,
            seq,
            len(hnsw),
            hnsw.dimensions,
            target.model,
            target.distance,
            json.dumps({**params.to_dict(), **hnsw.quantizer.to_json()}),
            int(time.time()),
            seal,
        )
        with self.store.transaction() as tx:
            saved = self.store.save_index_state(tx, state, old.file if old else None)
            if saved:
                self.store.advance_log(tx, target.id, LOG_CONSUMER, seq)
        if not saved:  # another process replaced the index meanwhile: keep theirs
            (directory / name).unlink(missing_ok=True)
            return self.store.index_state(target.id) or state
        if old is not None and old.file and old.file != name:
            _remove(directory / old.file)
        with self._lock:
            self._live.pop(target.id, None)
        return state

    def compact(self, target: CollectionRecord, live: LiveIndex) -> IndexState:
        """Fold the overlay into a new index file, without rebuilding the graph."""
        import numpy as np

        from .hnsw import HNSWIndex

        directory = self.directory
        assert directory is not None
        # A live index was opened from a recorded file (see _open).
        assert live.state.file is not None and live.state.distance is not None
        overlay = live.overlay  # one consistent overlay, whatever other threads refresh
        full = HNSWIndex.open(
            directory / live.state.file,
            live.state.distance,
            view=False,
            quantizer=live.hnsw.quantizer,  # new items take the file's scales
        )
        full.remove(np.fromiter(overlay.tombstones, dtype=np.uint64))
        if overlay.delta is not None and overlay.delta_keys is not None:
            full.add(overlay.delta_keys, overlay.delta.matrix, threads=build_threads())
        params = HNSWParams.from_json(live.state.params, target.distance)
        return self._save(target, full, overlay.seq, params, live.state)

    def build_native(self, target: CollectionRecord, **changes: int | str) -> IndexState:
        """Have the database build its own index of the collection (PostgreSQL's HNSW),
        with the recorded parameters (else :data:`NATIVE_DEFAULTS`) and ``changes``;
        ``quantize="f16"`` stores the collection's vectors at half precision first."""
        if target.dimensions is None:
            raise VibesError(f"Collection {target.name!r} is empty: there is nothing to index")
        old = self.store.index_state(target.id)
        recorded = old.params if old is not None and old.kind == NATIVE_KIND else None
        params = HNSWParams.from_json(
            recorded or json.dumps({**NATIVE_DEFAULTS, "quantize": "f32"}),
            target.distance,
            **changes,
        )
        vector_type = NATIVE_TYPES.get(str(params.quantize))
        if vector_type is None:
            raise VibesError(
                f"This database keeps {' or '.join(NATIVE_TYPES)} vectors, not "
                f"{params.quantize} (pgvector has no int8 vectors)"
            )
        self._say(f"Building the search index of {target.name!r} in the database")
        self.store.build_native_index(
            target.id,
            target.dimensions,
            target.distance,
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            vector_type=vector_type,
        )
        state = IndexState(
            target.id,
            NATIVE_KIND,
            None,
            self.store.last_change(target.id),
            self.store.count(target.id),
            target.dimensions,
            target.model,
            target.distance,
            json.dumps(params.to_dict()),
            int(time.time()),
        )
        with self.store.transaction() as tx:
            self.store.save_index_state(tx, state, old.file if old else None)
            self.store.release_log(tx, target.id, LOG_CONSUMER)
        return state

    def set_search_depth(self, target: CollectionRecord, depth: int) -> IndexState:
        """Record another search depth for the collection's index, which every process
        searching it then uses. Nothing is rebuilt: the file keeps its links, and the
        record its search depth (PostgreSQL's ``hnsw.ef_search`` likewise)."""
        if depth < 1:
            raise VibesError(f"The search depth must be at least 1, not {depth}")
        old = self.store.index_state(target.id)
        if old is None or old.kind not in (INDEX_KIND, NATIVE_KIND, DAMAGED_KIND):
            raise VibesError(
                f"Collection {target.name!r} has no index to set a search depth for: "
                "build one with --rebuild"
            )
        recorded = json.loads(old.params) if old.params else {}
        recorded["expansion_search"] = depth
        state = dataclasses.replace(old, params=json.dumps(recorded))
        with self.store.transaction() as tx:
            if not self.store.save_index_state(tx, state, old.file):
                raise VibesError(
                    f"The index of collection {target.name!r} was replaced meanwhile "
                    "(a build finished): run the command again"
                )
        return state

    def drop(self, target: CollectionRecord) -> None:
        """Remove the index and keep the collection unindexed until the next --rebuild."""
        self.store.drop_native_index(target.id)
        old = self.store.index_state(target.id)
        off = IndexState(target.id, OFF_KIND, None, 0, None, None, None, None, None, None)
        with self.store.transaction() as tx:
            self.store.save_index_state(tx, off, old.file if old else None)
            self.store.release_log(tx, target.id, LOG_CONSUMER)
        directory = self.directory
        if old is not None and old.file and directory is not None:
            _remove(directory / old.file)
        with self._lock:
            self._live.pop(target.id, None)

    def forget(self, collection_id: int, state: IndexState | None = None) -> None:
        """Delete a collection's index file (the collection itself is being deleted)."""
        with self._lock:
            self._live.pop(collection_id, None)
        directory = self.directory
        if state is not None and state.file and directory is not None:
            _remove(directory / state.file)

    def forget_all(self) -> None:
        """Close every open index (the database is closing)."""
        with self._lock:
            self._live.clear()

    def maintain(self, target: CollectionRecord, *, now: bool = False) -> bool:
        """After a write: build the index once the collection is large enough, repair a
        broken one, or fold a large overlay into a new file. That work is left to a
        background process (:mod:`vibes.index.background`) unless ``now`` or
        ``$VIBES_INDEX_BUILD=inline``; returns whether a background build was started."""
        from . import background

        if self.store.native_indexes:
            return self._maintain_native(target, now=now)
        directory = self.directory
        if directory is None:
            return False
        state = self.store.index_state(target.id)
        if state is not None and state.kind == OFF_KIND:
            return False
        work, live = self._work_needed(target, state)
        if work is None:
            if state is None:
                # No index to feed: drop what no other reader of the log needs.
                with self.store.transaction() as tx:
                    self.store.prune_log(tx, target.id)
            return False
        if not now and background.in_background():
            started = background.start(self.store.location, target.name, directory, target.id)
            if started:
                self._say(
                    f"Building the search index of {target.name!r} in the background "
                    f"(searches stay exact until it is ready; 'vibes index {target.name} "
                    "--wait' follows it)"
                )
            return started
        # Folding copies the file's vectors and links into the new file: damage no search
        # has met yet would be copied with them, so check first (cheap).
        if work == "fold" and live is not None and self.check(target, live) is None:
            delta = live.overlay.delta
            if delta is None or live.hnsw.quantizer.fits(delta.matrix):
                self.compact(target, live)
                return False
            # The new items range wider than the int8 scales were fitted to: folding
            # would clip them; a build fits the scales to every item again.
            self._say(f"Rebuilding the search index of {target.name!r} (new value ranges)")
        elif work != "build":
            self._say(f"Repairing the search index of {target.name!r}")
        self.build(target)
        return False

    def _native_status(
        self, target: CollectionRecord, state: IndexState, items: int
    ) -> dict[str, Any]:
        found = self.store.native_index(target.id)
        problem = None
        if found is None:
            problem = "is missing from the database"
        elif not found["valid"]:
            problem = "is not valid (a build was interrupted)"
        params = json.loads(state.params or "{}")
        info: dict[str, Any] = {
            "kind": INDEX_KIND,
            "kept_by": "database",
            "usable": problem is None,
            "problem": problem,
            "indexed": items,
            "pending_changes": 0,
            "stale": False,
            "name": found["name"] if found else None,
            "bytes": found["bytes"] if found else None,
            "vector_bytes": items * (target.dimensions or 0) * 4,
            "quantize": params.get("quantize", "f32"),
            "parameters": params,
            "model": state.model,
            "dimensions": state.dimensions,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.built or 0)),
        }
        if problem is not None:
            info["advice"] = (
                f"searches run exactly until you run 'vibes index {target.name} --rebuild'"
            )
        return info

    def _native_work(self, target: CollectionRecord, state: IndexState | None) -> str | None:
        """What a database-kept index needs: ``"build"`` (none yet, and the collection is
        large enough), ``"repair"`` (recorded, but gone or left invalid by an interrupted
        build) or None (the database keeps it in step by itself)."""
        if state is None:
            return "build" if self.store.count(target.id) >= min_items() else None
        if state.kind != NATIVE_KIND:
            return None
        found = self.store.native_index(target.id)
        return "repair" if found is None or not found["valid"] else None

    def _maintain_native(self, target: CollectionRecord, *, now: bool) -> bool:
        from . import background

        state = self.store.index_state(target.id)
        work = self._native_work(target, state)
        if work is None:
            return False
        directory = self.build_directory
        if not now and directory is not None and background.in_background():
            started = background.start(self.store.location, target.name, directory, target.id)
            if started:
                self._say(
                    f"Building the search index of {target.name!r} in the database, in the "
                    f"background (searches stay exact until it is ready; 'vibes index "
                    f"{target.name} --wait' follows it)"
                )
            return started
        self.build_native(target)
        return False

    def needs_work(self, target: CollectionRecord) -> bool:
        """Whether :meth:`maintain` would build, repair or fold (cheap: no file is read
        but the open index's header)."""
        if self.store.native_indexes:
            return self._native_work(target, self.store.index_state(target.id)) is not None
        state = self.store.index_state(target.id)
        if state is not None and state.kind == OFF_KIND:
            return False
        return self._work_needed(target, state)[0] is not None

    def _work_needed(
        self, target: CollectionRecord, state: IndexState | None
    ) -> tuple[str | None, LiveIndex | None]:
        """What the collection's index needs: ``"build"`` (it has none and is large
        enough), ``"repair"`` (its file cannot be used), ``"fold"`` (its overlay grew too
        large) or None; with the index opened, when it could be."""
        if state is None:
            return ("build" if self.store.count(target.id) >= min_items() else None), None
        live, _problem = self.open(target)
        if live is None:
            return "repair", None
        if live.pending > max(COMPACT_MIN_CHANGES, COMPACT_FRACTION * len(live.hnsw)):
            return "fold", live
        return None, live

    def status(self, target: CollectionRecord) -> dict[str, Any]:
        """What ``vibes index COLLECTION`` shows. The file is checked (cheaply) before it
        is called usable: usearch opens a file whose header is intact whatever follows."""
        from . import background

        state = self.store.index_state(target.id)
        info: dict[str, Any] = {
            "collection": target.name,
            "items": self.store.count(target.id),
            "distance": target.distance,
            "auto_index_from": min_items(),
        }
        building = background.running(self.build_directory, target.id)
        if building is not None:
            # A write's build, in another process; searches stay exact until it is saved.
            info["building"] = building
        if state is None or state.kind == OFF_KIND:
            info["kind"] = "none" if state is None else "off"
            return info
        if state.kind == NATIVE_KIND:
            return {**info, **self._native_status(target, state, info["items"])}
        live, problem = self.open(target)
        if live is not None:
            problem = self.check(target, live)
            if problem is not None:
                live = None
        path = self.directory / state.file if self.directory and state.file else None
        quantizer = Quantizer.recorded(state.params, target.distance)
        try:
            size = path.stat().st_size if path and path.is_file() else None
        except OSError:  # unreachable: problem() has said why
            size = None
        info.update(
            {
                # A damaged file is still an HNSW file; "usable" and "problem" say the rest.
                "kind": INDEX_KIND if state.kind == DAMAGED_KIND else state.kind,
                "usable": problem is None,
                "problem": problem,
                "indexed": state.size,
                "pending_changes": live.pending if live else None,
                "stale": bool(live.pending) if live else True,
                "file": str(path) if path else None,
                "bytes": size,
                "vector_bytes": (state.size or 0) * (state.dimensions or 0) * 4,
                "quantize": quantizer.dtype,
                # Memory an exact scan holds (its compact copies when quantised); the
                # graph's file is memory-mapped, so it takes what it is read of it.
                "scan_bytes": quantizer.vector_bytes(info["items"], state.dimensions or 0),
                "parameters": {
                    key: value
                    for key, value in json.loads(state.params or "{}").items()
                    if key != "scales"
                },
                "model": state.model,
                "dimensions": state.dimensions,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.built or 0)),
            }
        )
        if problem is not None:
            info["advice"] = (
                f"searches run exactly until you run 'vibes index {target.name} --rebuild' "
                "(or the next write rebuilds it)"
            )
        return info

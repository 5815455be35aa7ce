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
``vibes index COLLECTION --rebuild``.

The manager works on :class:`~vibes.store.CollectionRecord` values, never on
:class:`~vibes.Collection` objects: it sits below them.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VibesError
from ..store.base import Candidates, CollectionRecord, IndexState, Store
from .hnsw import HNSWParams

if TYPE_CHECKING:
    import numpy as np

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
INDEX_KIND = "hnsw"
OFF_KIND = "off"
#: This manager's name among the readers of the change log.
LOG_CONSUMER = "index"


class IndexWarning(UserWarning):
    """An index could not be used; the search ran exactly instead."""


def min_items() -> int:
    """The size from which collections are indexed: ``$VIBES_INDEX_MIN_ITEMS`` or 20,000."""
    value = os.environ.get("VIBES_INDEX_MIN_ITEMS")
    return int(value) if value and value.isdigit() else DEFAULT_MIN_ITEMS


@dataclass
class LiveIndex:
    """An opened index file plus the overlay of changes made since it was saved."""

    state: IndexState
    hnsw: HNSWIndex
    version: object = None
    seq: int = 0
    tombstones: frozenset[int] = frozenset()
    delta: ExactIndex | None = None
    delta_keys: np.ndarray | None = None

    @property
    def pending(self) -> int:
        return len(self.tombstones)


class IndexManager:
    """Builds, opens, refreshes, compacts and searches the indexes of one database.

    Safe to share between threads: opening and refreshing an index, and searching its
    graph, happen under one lock (a graph search takes a fraction of a millisecond).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._live: dict[int, LiveIndex] = {}
        self._lock = threading.RLock()
        #: Called with progress messages (index builds); the command line prints them.
        self.notify: Callable[[str], None] | None = None

    @property
    def directory(self) -> Path | None:
        return self.store.sidecar_directory()

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
        if directory is None or not state.file or not (directory / state.file).is_file():
            return "file is missing"
        return None

    def open(self, target: CollectionRecord) -> tuple[LiveIndex | None, str | None]:
        """The collection's index refreshed with every change since it was saved; or
        (None, why) when the recorded index cannot be used; (None, None) when it has none."""
        with self._lock:
            return self._open(target)

    def _open(self, target: CollectionRecord) -> tuple[LiveIndex | None, str | None]:
        state = self.store.index_state(target.id)
        if state is None or state.kind != INDEX_KIND:
            self._live.pop(target.id, None)
            return None, None
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
                    hnsw = HNSWIndex.open(directory / state.file, target.distance)
                    if len(hnsw) != state.size or hnsw.dimensions != state.dimensions:
                        problem = "file does not match its record (corrupt or replaced)"
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
        from .exact import ExactIndex

        seq, changed = self.store.changes_since(target.id, live.state.seq)
        if not changed:
            live.seq, live.tombstones, live.delta, live.delta_keys = seq, frozenset(), None, None
            return
        tombstones = frozenset(self.store.keys_for_ids(target.id, changed).values())
        found = self.store.load_matrix(target.id, live.state.dimensions, changed, with_keys=True)
        delta = ExactIndex(found.ids, found.vectors, live.state.distance or target.distance)
        live.seq, live.tombstones = seq, tombstones
        live.delta, live.delta_keys = (delta, found.keys) if found.ids else (None, None)

    def search(
        self,
        live: LiveIndex,
        queries: np.ndarray,
        n: int,
        candidates: Candidates | None = None,
    ) -> list[list[tuple[str, float]]] | None:
        """The ``n`` best (id, score) for each prepared query from the graph and the overlay;
        None when too few candidates pass a filter for the graph to find them (the caller
        then searches the candidates exactly)."""
        size = len(live.hnsw)
        allowed: set[int] | None = None
        if candidates is not None:
            allowed = {key for key in candidates.keys if key is not None}
        fraction = 1.0 if allowed is None else max(len(allowed) / max(size, 1), 1e-9)
        # Ask for a little more than needed (more when a filter passes few items); masked-out
        # items rarely come up, and when too few remain the loop asks for more.
        k = min(size, math.ceil((n + 10) / fraction * 1.5))
        limit = max(k, 50_000)
        tombstones, delta = live.tombstones, live.delta  # one consistent overlay
        results: list[list[tuple[int, float]]] = []
        while True:
            with self._lock:
                found = live.hnsw.search(queries, k)
            results = [
                [
                    (int(key), float(score))
                    for key, score in zip(keys, scores)
                    if int(key) not in tombstones and (allowed is None or int(key) in allowed)
                ][:n]
                for keys, scores in found
            ]
            if all(len(r) >= n for r in results) or k >= size:
                break
            if k >= limit:
                return None
            k = min(size, k * 4)
        names = self.store.ids_for_keys(sorted({key for r in results for key, _ in r}))
        merged = [[(names[key], score) for key, score in r if key in names] for r in results]
        if delta is not None:
            rows = None if candidates is None else delta.positions(candidates.ids)
            for result, extra in zip(merged, delta.search_many(queries, n, rows=rows)):
                result.extend(extra)
                result.sort(key=lambda pair: -pair[1])
                del result[n:]
        return merged

    # -- writing ----------------------------------------------------------------------------

    def build(self, target: CollectionRecord, params: HNSWParams | None = None) -> IndexState:
        """Build the collection's index from every stored vector, replacing any other."""
        directory = self.directory
        if directory is None:
            raise VibesError("An in-memory database cannot keep an index")
        from .exact import ExactIndex
        from .hnsw import HNSWIndex

        old = self.store.index_state(target.id)
        if params is None:
            params = HNSWParams(**json.loads(old.params)) if old and old.params else HNSWParams()
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
            hnsw = HNSWIndex.build(
                found.keys,
                ExactIndex.prepare(found.vectors, target.distance),
                target.distance,
                params,
                threads=os.cpu_count() or 1,
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
        directory.mkdir(parents=True, exist_ok=True)
        name = f"c{target.id}-{seq}-{secrets.token_hex(4)}.usearch"
        temporary = directory / (name + ".tmp")
        hnsw.save(temporary)
        os.replace(temporary, directory / name)
        state = IndexState(
            target.id,
            INDEX_KIND,
            name,
            seq,
            len(hnsw),
            hnsw.dimensions,
            target.model,
            target.distance,
            json.dumps(params.to_dict()),
            int(time.time()),
        )
        with self.store.transaction() as tx:
            saved = self.store.save_index_state(tx, state, old.file if old else None)
            if saved:
                self.store.advance_log(tx, target.id, LOG_CONSUMER, seq)
        if not saved:  # another process replaced the index meanwhile: keep theirs
            (directory / name).unlink(missing_ok=True)
            return self.store.index_state(target.id) or state
        if old is not None and old.file and old.file != name:
            (directory / old.file).unlink(missing_ok=True)
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
        full = HNSWIndex.open(directory / live.state.file, live.state.distance, view=False)
        full.remove(np.fromiter(live.tombstones, dtype=np.uint64))
        if live.delta is not None and live.delta_keys is not None:
            full.add(live.delta_keys, live.delta.matrix, threads=os.cpu_count() or 1)
        params = HNSWParams(**json.loads(live.state.params or "{}"))
        return self._save(target, full, live.seq, params, live.state)

    def drop(self, target: CollectionRecord) -> None:
        """Remove the index and keep the collection unindexed until the next --rebuild."""
        old = self.store.index_state(target.id)
        off = IndexState(target.id, OFF_KIND, None, 0, None, None, None, None, None, None)
        with self.store.transaction() as tx:
            self.store.save_index_state(tx, off, old.file if old else None)
            self.store.release_log(tx, target.id, LOG_CONSUMER)
        directory = self.directory
        if old is not None and old.file and directory is not None:
            (directory / old.file).unlink(missing_ok=True)
        with self._lock:
            self._live.pop(target.id, None)

    def forget(self, collection_id: int, state: IndexState | None = None) -> None:
        """Delete a collection's index file (the collection itself is being deleted)."""
        with self._lock:
            self._live.pop(collection_id, None)
        directory = self.directory
        if state is not None and state.file and directory is not None:
            (directory / state.file).unlink(missing_ok=True)

    def forget_all(self) -> None:
        """Close every open index (the database is closing)."""
        with self._lock:
            self._live.clear()

    def maintain(self, target: CollectionRecord) -> None:
        """After a write: build the index once the collection is large enough, repair a
        broken one, or fold a large overlay into a new file."""
        if self.directory is None:
            return
        state = self.store.index_state(target.id)
        if state is not None and state.kind == OFF_KIND:
            return
        if state is None:
            if self.store.count(target.id) >= min_items():
                self.build(target)
            else:
                # No index to feed: drop what no other reader of the log needs.
                with self.store.transaction() as tx:
                    self.store.prune_log(tx, target.id)
            return
        live, _problem = self.open(target)
        if live is None:
            self._say(f"Repairing the search index of {target.name!r}")
            self.build(target)
            return
        if live.pending > max(COMPACT_MIN_CHANGES, COMPACT_FRACTION * len(live.hnsw)):
            self.compact(target, live)

    def status(self, target: CollectionRecord) -> dict[str, Any]:
        """What ``vibes index COLLECTION`` shows."""
        state = self.store.index_state(target.id)
        info: dict[str, Any] = {
            "collection": target.name,
            "items": self.store.count(target.id),
            "distance": target.distance,
            "auto_index_from": min_items(),
        }
        if state is None or state.kind == OFF_KIND:
            info["kind"] = "none" if state is None else "off"
            return info
        live, problem = self.open(target)
        path = self.directory / state.file if self.directory and state.file else None
        info.update(
            {
                "kind": state.kind,
                "usable": problem is None,
                "problem": problem,
                "indexed": state.size,
                "pending_changes": live.pending if live else None,
                "stale": bool(live.pending) if live else True,
                "file": str(path) if path else None,
                "bytes": path.stat().st_size if path and path.is_file() else None,
                "vector_bytes": (state.size or 0) * (state.dimensions or 0) * 4,
                "parameters": json.loads(state.params or "{}"),
                "model": state.model,
                "dimensions": state.dimensions,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.built or 0)),
            }
        )
        return info

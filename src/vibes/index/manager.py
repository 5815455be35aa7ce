"""Keeps each collection's approximate index in step with the ``embeddings`` table.

The index is a usearch file beside the database (``DB.indexes/``), recorded in
``vibes_indexes`` with the number of the last change it includes. Triggers log every change
to ``embeddings`` (whoever makes it) in ``vibes_changes``; a search applies the changes made
since the file was saved as an overlay: changed and deleted items are masked out of the
graph ("tombstones"), and their current vectors are searched exactly ("delta"). So the
index is never trusted while stale, and adding a few items never rebuilds it. When the
overlay grows past a share of the index, the next write folds it into a new file.

A file that is missing, corrupt, or built for another model, dimension or distance is
bypassed (the search runs exactly and a warning says so) and rebuilt by the next write or
``vibes index COLLECTION --rebuild``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import IndexState
from .hnsw import HNSWParams

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection
    from ..store import SQLiteStore
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
    version: tuple[int, int] | None = None
    seq: int = 0
    tombstones: frozenset[int] = frozenset()
    delta: ExactIndex | None = None
    delta_keys: np.ndarray | None = None

    @property
    def pending(self) -> int:
        return len(self.tombstones)


class IndexManager:
    """Builds, opens, refreshes, compacts and searches the indexes of one database."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._live: dict[int, LiveIndex] = {}
        #: Called with progress messages (index builds); the command line prints them.
        self.notify: Callable[[str], None] | None = None

    @property
    def directory(self) -> Path | None:
        if self.store.path == ":memory:" or not self.store.path:
            return None
        return Path(self.store.path + ".indexes")

    def _say(self, message: str) -> None:
        if self.notify is not None:
            self.notify(message)

    # -- reading ----------------------------------------------------------------------------

    def problem(self, collection: Collection, state: IndexState) -> str | None:
        """Why the recorded index cannot serve this collection, or None."""
        if state.model != collection.model_id:
            return f"was built for model {state.model}, not {collection.model_id}"
        if state.dimensions != collection.dimensions:
            return f"has {state.dimensions} dimensions, the collection {collection.dimensions}"
        if state.distance != collection.distance:
            return f"was built for {state.distance} distance, not {collection.distance}"
        directory = self.directory
        if directory is None or not state.file or not (directory / state.file).is_file():
            return "file is missing"
        return None

    def live(self, collection: Collection, *, warn: bool = True) -> LiveIndex | None:
        """The collection's index, refreshed with every change since it was saved, or None
        when it has none or it cannot be used (then a warning says why)."""
        live, problem = self._open(collection)
        if problem is not None and warn:
            warnings.warn(
                f"The index of collection {collection.name!r} {problem}; searching "
                f"exactly instead (run 'vibes index {collection.name} --rebuild')",
                IndexWarning,
                stacklevel=3,
            )
        return live

    def _open(self, collection: Collection) -> tuple[LiveIndex | None, str | None]:
        """The refreshed index, or why the recorded one cannot be used (None, None when the
        collection has no index)."""
        state = self.store.index_state(collection.id)
        if state is None or state.kind != INDEX_KIND:
            self._live.pop(collection.id, None)
            return None, None
        cached = self._live.get(collection.id)
        if cached is None or cached.state != state:
            problem = self.problem(collection, state)
            hnsw = None
            if problem is None:
                from .hnsw import HNSWIndex

                try:
                    hnsw = HNSWIndex.open(self.directory / state.file, state.distance)  # type: ignore[operator]
                    if len(hnsw) != state.size or hnsw.dimensions != state.dimensions:
                        problem = "file does not match its record (corrupt or replaced)"
                except Exception as error:  # usearch raises several kinds on damaged files
                    problem = f"file cannot be read ({type(error).__name__}: {error})"
            if problem is not None or hnsw is None:
                self._live.pop(collection.id, None)
                return None, problem
            cached = LiveIndex(state, hnsw)
            self._live[collection.id] = cached
        version = self.store.data_version()
        if cached.version != version:
            self._refresh(collection, cached)
            cached.version = version
        return cached, None

    def _refresh(self, collection: Collection, live: LiveIndex) -> None:
        import numpy as np

        from .exact import ExactIndex

        seq, changed = self.store.changes_since(collection.id, live.state.seq)
        live.seq = seq
        if not changed:
            live.tombstones, live.delta, live.delta_keys = frozenset(), None, None
            return
        live.tombstones = frozenset(self.store.keys_for_ids(collection.id, changed).values())
        keys, ids, blobs = self.store.vectors_with_keys(collection.id, changed)
        if ids:
            live.delta = ExactIndex(ids, blobs, live.state.dimensions, live.state.distance)  # type: ignore[arg-type]
            live.delta_keys = np.asarray(keys, dtype=np.uint64)
        else:
            live.delta, live.delta_keys = None, None

    def search(
        self,
        live: LiveIndex,
        queries: np.ndarray,
        n: int,
        candidates: list[tuple[int | None, str]] | None = None,
    ) -> list[list[tuple[str, float]]] | None:
        """The ``n`` best (id, score) for each prepared query from the graph and the overlay;
        None when too few candidates pass a filter for the graph to find them (the caller
        then searches the candidates exactly)."""
        size = len(live.hnsw)
        allowed: set[int] | None = None
        if candidates is not None:
            allowed = {key for key, _ in candidates if key is not None}
        fraction = 1.0 if allowed is None else max(len(allowed) / max(size, 1), 1e-9)
        # Ask for a little more than needed (more when a filter passes few items); masked-out
        # items rarely come up, and when too few remain the loop asks for more.
        k = min(size, math.ceil((n + 10) / fraction * 1.5))
        limit = max(k, 50_000)
        results: list[list[tuple[int, float]]] = []
        while True:
            found = live.hnsw.search(queries, k)
            results = [
                [
                    (int(key), float(score))
                    for key, score in zip(keys, scores)
                    if int(key) not in live.tombstones and (allowed is None or int(key) in allowed)
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
        if live.delta is not None:
            rows = None
            if candidates is not None:
                rows = live.delta.positions([item_id for _, item_id in candidates])
            for result, extra in zip(merged, live.delta.search_many(queries, n, rows=rows)):
                result.extend(extra)
                result.sort(key=lambda pair: -pair[1])
                del result[n:]
        return merged

    # -- writing ----------------------------------------------------------------------------

    def build(self, collection: Collection, params: HNSWParams | None = None) -> IndexState:
        """Build the collection's index from every stored vector, replacing any other."""
        directory = self.directory
        if directory is None:
            from ..errors import VibesError

            raise VibesError("An in-memory database cannot keep an index")
        import numpy as np

        from .exact import ExactIndex
        from .hnsw import HNSWIndex

        old = self.store.index_state(collection.id)
        if params is None:
            params = HNSWParams(**json.loads(old.params)) if old and old.params else HNSWParams()
        with self.store.transaction() as conn:
            self.store.ensure_keys(conn, collection.id)
        # Changes after this number are applied as the overlay, even if the vectors read
        # below already include them: re-applying a change is harmless.
        seq = self.store.last_change(collection.id)
        keys, _ids, blobs = self.store.vectors_with_keys(collection.id)
        dimensions = collection.dimensions or (len(blobs[0]) // 4 if blobs else 0)
        self._say(f"Building the search index of {collection.name!r} ({len(keys):,} items)")
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(keys), dimensions)
        matrix = ExactIndex.prepare(matrix, collection.distance)
        hnsw = HNSWIndex.build(
            np.asarray(keys, dtype=np.uint64),
            matrix,
            collection.distance,
            params,
            threads=os.cpu_count() or 1,
        )
        return self._save(collection, hnsw, seq, params, old)

    def _save(
        self,
        collection: Collection,
        hnsw: HNSWIndex,
        seq: int,
        params: HNSWParams,
        old: IndexState | None,
    ) -> IndexState:
        directory = self.directory
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        name = f"c{collection.id}-{seq}-{secrets.token_hex(4)}.usearch"
        temporary = directory / (name + ".tmp")
        hnsw.save(temporary)
        os.replace(temporary, directory / name)
        state = IndexState(
            collection.id,
            INDEX_KIND,
            name,
            seq,
            len(hnsw),
            hnsw.dimensions,
            collection.model_id,
            collection.distance,
            json.dumps(params.to_dict()),
            int(time.time()),
        )
        with self.store.transaction() as conn:
            saved = self.store.save_index_state(conn, state, old.file if old else None)
            if saved:
                self.store.prune_changes(conn, collection.id, seq)
        if not saved:  # another process replaced the index meanwhile: keep theirs
            (directory / name).unlink(missing_ok=True)
            return self.store.index_state(collection.id) or state
        if old is not None and old.file and old.file != name:
            (directory / old.file).unlink(missing_ok=True)
        self._live.pop(collection.id, None)
        return state

    def compact(self, collection: Collection, live: LiveIndex) -> IndexState:
        """Fold the overlay into a new index file, without rebuilding the graph."""
        import numpy as np

        from .hnsw import HNSWIndex

        directory = self.directory
        assert directory is not None
        full = HNSWIndex.open(directory / live.state.file, live.state.distance, view=False)  # type: ignore[operator]
        full.remove(np.fromiter(live.tombstones, dtype=np.uint64))
        if live.delta is not None and live.delta_keys is not None:
            full.add(live.delta_keys, live.delta.matrix, threads=os.cpu_count() or 1)
        params = HNSWParams(**json.loads(live.state.params or "{}"))
        return self._save(collection, full, live.seq, params, live.state)

    def drop(self, collection: Collection) -> None:
        """Remove the index and keep the collection unindexed until the next --rebuild."""
        old = self.store.index_state(collection.id)
        off = IndexState(collection.id, OFF_KIND, None, 0, None, None, None, None, None, None)
        with self.store.transaction() as conn:
            self.store.save_index_state(conn, off, old.file if old else None)
            self.store.prune_changes(conn, collection.id, self.store.last_change(collection.id))
        directory = self.directory
        if old is not None and old.file and directory is not None:
            (directory / old.file).unlink(missing_ok=True)
        self._live.pop(collection.id, None)

    def forget(self, collection_id: int, state: IndexState | None = None) -> None:
        """Delete a collection's index file (the collection itself is being deleted)."""
        self._live.pop(collection_id, None)
        directory = self.directory
        if state is not None and state.file and directory is not None:
            (directory / state.file).unlink(missing_ok=True)

    def forget_all(self) -> None:
        """Close every open index (the database is closing)."""
        self._live.clear()

    def maintain(self, collection: Collection) -> None:
        """After a write: build the index once the collection is large enough, repair a
        broken one, or fold a large overlay into a new file."""
        if self.directory is None:
            return
        state = self.store.index_state(collection.id)
        if state is not None and state.kind == OFF_KIND:
            return
        if state is None:
            if collection.count() >= min_items():
                self.build(collection)
            else:
                # No index to feed: the change log is not needed.
                with self.store.transaction() as conn:
                    self.store.prune_changes(
                        conn, collection.id, self.store.last_change(collection.id)
                    )
            return
        live = self.live(collection, warn=False)
        if live is None:
            self._say(f"Repairing the search index of {collection.name!r}")
            self.build(collection)
            return
        if live.pending > max(COMPACT_MIN_CHANGES, COMPACT_FRACTION * len(live.hnsw)):
            self.compact(collection, live)

    def status(self, collection: Collection) -> dict[str, Any]:
        """What ``vibes index COLLECTION`` shows."""
        state = self.store.index_state(collection.id)
        info: dict[str, Any] = {
            "collection": collection.name,
            "items": collection.count(),
            "distance": collection.distance,
            "auto_index_from": min_items(),
        }
        if state is None or state.kind == OFF_KIND:
            info["kind"] = "none" if state is None else "off"
            return info
        live, problem = self._open(collection)
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

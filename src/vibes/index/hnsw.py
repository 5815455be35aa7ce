"""The approximate index: a usearch HNSW graph, saved to a file and opened memory-mapped.

usearch was chosen by measurement (bench/bench_index.py): it installs from PyPI as a wheel
on Linux, macOS and Windows, needs no SQLite extension, and answers in a fraction of a
millisecond with recall above 0.95; an index opened as a view is memory-mapped, so a new
process searches it without reading every vector.
"""

from __future__ import annotations

import ctypes
import inspect
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from usearch.index import Index

# numpy and usearch load when an index is first used, not when this module is imported.

_METRICS = {"cosine": "ip", "dot": "ip", "euclidean": "l2sq"}


def _usearch_index() -> type[Index]:
    """usearch's Index class, loaded so that it cannot break a C++ library loaded later.

    usearch's compiled module carries its own copy of the C++ runtime, whose process-wide
    ("unique") symbols then stand in for the system's: onnxruntime, loaded after it,
    crashed the process (a segmentation fault on import, usearch 2.26 with onnxruntime
    1.31). Loading the system's C++ runtime globally first makes its symbols the ones
    every later library binds to. Elsewhere than Linux, or without that file, nothing
    changes."""
    global _runtime_loaded
    if not _runtime_loaded and sys.platform.startswith("linux"):
        _runtime_loaded = True
        try:
            ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass
    from usearch.index import Index

    return Index


_runtime_loaded = False


def _callback(progress: Callable[[int, int], bool]) -> Callable[[int, int], bool]:
    """``progress`` as usearch accepts it: it checks a callback's annotations, which
    must be the types themselves (``int, int -> bool``), not the strings this module's
    postponed annotations make."""

    def call(done: int, total: int) -> bool:
        return bool(progress(done, total))

    parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, parameter, annotation=int) for name in ("done", "total")],
        return_annotation=bool,
    )
    return call


@dataclass(frozen=True)
class HNSWParams:
    """Graph parameters: links per node (M), and search depths when adding and querying."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class HNSWIndex:
    """Vectors under integer keys in an HNSW graph. Vectors must be prepared as searched
    (unit length for cosine); scores follow :mod:`vibes.index.exact`'s definitions."""

    def __init__(self, index: Index, distance: str) -> None:
        self._index = index
        self.distance = distance

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        vectors: np.ndarray,
        distance: str,
        params: HNSWParams = HNSWParams(),
        threads: int = 0,
        progress: Callable[[int, int], bool] | None = None,
    ) -> HNSWIndex:
        import numpy as np

        Index = _usearch_index()
        index = Index(
            ndim=vectors.shape[1],
            metric=_METRICS[distance],
            dtype="f32",
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            expansion_search=params.expansion_search,
        )
        if len(keys):
            index.add(
                np.asarray(keys, dtype=np.uint64),
                vectors,
                threads=threads,
                progress=_callback(progress) if progress is not None else None,
            )
        return cls(index, distance)

    @classmethod
    def open(cls, path: str | Path, distance: str, *, view: bool = True) -> HNSWIndex:
        """Open a saved index: memory-mapped and read-only by default, or loaded to change."""
        index = _usearch_index().restore(str(path), view=view)
        if index is None:
            raise ValueError(f"not a usearch index: {path}")
        return cls(index, distance)

    def save(self, path: str | Path) -> None:
        self._index.save(str(path))

    def __len__(self) -> int:
        return len(self._index)

    @property
    def dimensions(self) -> int:
        return int(self._index.ndim)

    def set_expansion_search(self, value: int) -> None:
        # usearch defines this property's setter apart from its getter, which mypy reads as
        # a read-only property; the setter exists (usearch.index.Index.expansion_search).
        self._index.expansion_search = value  # type: ignore[misc]

    def add(self, keys: np.ndarray, vectors: np.ndarray, threads: int = 0) -> None:
        import numpy as np

        if len(keys):
            self._index.add(np.asarray(keys, dtype=np.uint64), vectors, threads=threads)

    def remove(self, keys: np.ndarray) -> None:
        import numpy as np

        present = [int(k) for k in keys if int(k) in self._index]
        if present:
            self._index.remove(np.asarray(present, dtype=np.uint64))

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """For each key, whether the graph holds it (a bool array)."""
        import numpy as np

        if not len(keys):
            return np.zeros(0, dtype=bool)
        return np.atleast_1d(self._index.contains(np.asarray(keys, dtype=np.uint64)))

    def sample_keys(self, count: int) -> np.ndarray:
        """The keys of up to ``count`` of its entries, taken at evenly spaced positions of
        usearch's key table (which is in no particular order), for spot checks."""
        import numpy as np

        size = len(self._index)
        if size == 0 or count <= 0:
            return np.empty(0, dtype=np.uint64)
        offsets = np.unique(np.linspace(0, size - 1, min(count, size)).astype(np.int64))
        return np.asarray(self._index.keys[offsets], dtype=np.uint64)

    def vectors(self, keys: np.ndarray) -> list[np.ndarray | None]:
        """The vectors the file holds under ``keys`` (None for a key it lacks)."""
        import numpy as np

        if not len(keys):
            return []
        found = self._index.get(np.asarray(keys, dtype=np.uint64))
        rows = found if isinstance(found, tuple) else (found,)
        return [None if row is None else np.asarray(row, dtype=np.float32) for row in rows]

    def search(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each prepared query, (keys, scores) of up to ``k`` neighbours, best first."""
        import numpy as np

        from .exact import euclidean_score

        k = min(k, len(self._index))
        if k <= 0:
            return [(np.empty(0, np.uint64), np.empty(0, np.float32)) for _ in queries]
        # usearch's search depth must be at least k to return k results.
        depth = self._index.expansion_search
        if depth < k:
            self.set_expansion_search(k)
        try:
            found = self._index.search(queries, k)
        finally:
            self.set_expansion_search(depth)
        keys = np.atleast_2d(found.keys)
        distances = np.atleast_2d(found.distances)
        # One query gives Matches (already cut to its count), several give BatchMatches.
        one_query_count: int = keys.shape[1]
        counts = np.atleast_1d(getattr(found, "counts", one_query_count))
        results = []
        for row_keys, row_distances, count in zip(keys, distances, counts):
            row_keys, row_distances = row_keys[:count], row_distances[:count]
            if self.distance == "euclidean":
                scores = euclidean_score(row_distances)
            else:
                scores = 1.0 - row_distances  # usearch's inner-product distance is 1 - dot
            results.append((row_keys, scores.astype(np.float32)))
        return results

"""The approximate index: a usearch HNSW graph, saved to a file and opened memory-mapped.

usearch was chosen by measurement (bench/bench_index.py): it installs from PyPI as a wheel
on Linux, macOS and Windows, needs no SQLite extension, and answers in a fraction of a
millisecond with recall above 0.95; an index opened as a view is memory-mapped, so a new
process searches it without reading every vector.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VibesError
from .quantize import DTYPES, Quantizer, check_dtype

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np
    from usearch.index import Index

# numpy and usearch load when an index is first used, not when this module is imported.

_METRICS = {"cosine": "ip", "dot": "ip", "euclidean": "l2sq"}


def _usearch_index() -> type[Index]:
    """usearch's Index class (see :func:`usearch_module`)."""
    return usearch_module().Index


def usearch_module() -> ModuleType:
    """usearch's ``usearch.index`` module, loaded so that it cannot break a C++ library
    loaded later.

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
    import usearch.index

    return usearch.index


_runtime_loaded = False


#: The fewest items one call to usearch adds during a build that reports progress.
PROGRESS_SLICE = 5_000


class SettingError(VibesError, ValueError):
    """A setting in the environment is invalid: one line on the command line; a write
    that meets it keeps its rows and reports it as a warning (a ValueError)."""


def default_quantize(distance: str) -> str:
    """The vector type of new indexes: ``$VIBES_INDEX_QUANTIZE`` (``f32``, ``f16`` or
    ``i8``), else int8 for cosine distance and float32 for the others.

    Chosen by measurement (bench/bench_quantized.py, real MiniLM vectors): for cosine,
    whose vectors are unit length, an int8 graph builds 2.4x as fast as a float32 one,
    takes a third of its file, answers faster, and finds as many true hits after
    re-scoring (recall@10 0.944 against 0.942 at 100,000 items). Dot and euclidean
    vectors may span magnitudes that 255 steps per dimension cannot tell apart."""
    value = os.environ.get("VIBES_INDEX_QUANTIZE") or ("i8" if distance == "cosine" else "f32")
    if value not in DTYPES:
        raise SettingError(f"$VIBES_INDEX_QUANTIZE is {value!r}: use one of {', '.join(DTYPES)}")
    return value


@dataclass(frozen=True)
class HNSWParams:
    """Graph parameters: links per node (M), search depths when adding and querying,
    and the type its vectors (and the exact scan's) are kept in: ``f32``, ``f16`` or
    ``i8`` (see :mod:`vibes.index.quantize`)."""

    # Chosen by measurement (bench/bench_quantized.py, 100,000 Debian-derived MiniLM
    # vectors, real question queries, int8): 32 links and a build depth of 64 build 1.6x
    # as fast as FAISS's HNSWFlat (M=32, efConstruction=40) and, searched 96 deep, find
    # more true hits (recall@10 0.940 against 0.935) sooner (0.39 ms against 0.41) than
    # FAISS at its default depth; usearch's defaults (16, 128, 64) built 0.94x as fast.
    connectivity: int = 32
    expansion_add: int = 64
    expansion_search: int = 96
    quantize: str = "f32"

    def __post_init__(self) -> None:
        check_dtype(self.quantize)

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)

    @classmethod
    def from_json(cls, text: str | None, distance: str, **changes: int | str) -> HNSWParams:
        """The parameters recorded with an index (its JSON), with ``changes`` applied;
        what the record holds besides (the quantizer's scales) is left out. Without a
        record, a new index's defaults for collections of that distance."""
        recorded = json.loads(text) if text else {"quantize": default_quantize(distance)}
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {key: value for key, value in recorded.items() if key in names}
        return cls(**{**values, **changes})


class HNSWIndex:
    """Vectors under integer keys in an HNSW graph. Vectors must be prepared as searched
    (unit length for cosine); scores follow :mod:`vibes.index.exact`'s definitions. A
    compact graph (float16 or int8) holds its vectors as its quantizer encodes them, and
    its scores are estimates on the float32 scale."""

    def __init__(self, index: Index, distance: str, quantizer: Quantizer | None = None) -> None:
        self._index = index
        self.distance = distance
        self.quantizer = quantizer or Quantizer("f32", distance)

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        vectors: np.ndarray,
        distance: str,
        params: HNSWParams = HNSWParams(),
        threads: int = 0,
        progress: Callable[[int, int], bool] | None = None,
        quantizer: Quantizer | None = None,
    ) -> HNSWIndex:
        import numpy as np

        quantizer = quantizer or Quantizer("f32", distance)
        Index = _usearch_index()
        index = Index(
            ndim=vectors.shape[1],
            metric=_METRICS[distance],
            dtype=quantizer.dtype,
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            expansion_search=params.expansion_search,
        )
        keys = np.asarray(keys, dtype=np.uint64)
        encoded = quantizer.encode(vectors)
        # Added a slice at a time, with progress reported between slices: usearch's own
        # callback is called every few items (half a million times for a million), which
        # cost 8% of a build.
        step = len(keys) if progress is None else max(PROGRESS_SLICE, len(keys) // 100)
        for start in range(0, len(keys), max(step, 1)):
            index.add(keys[start : start + step], encoded[start : start + step], threads=threads)
            if progress is not None:
                progress(min(start + step, len(keys)), len(keys))
        return cls(index, distance, quantizer)

    @classmethod
    def open(
        cls,
        path: str | Path,
        distance: str,
        *,
        view: bool = True,
        quantizer: Quantizer | None = None,
    ) -> HNSWIndex:
        """Open a saved index: memory-mapped and read-only by default, or loaded to change."""
        index = _usearch_index().restore(str(path), view=view)
        if index is None:
            raise ValueError(f"not a usearch index: {path}")
        quantizer = quantizer or Quantizer("f32", distance)
        if str(index.dtype).rsplit(".", 1)[-1].lower() != quantizer.dtype:
            raise ValueError(f"holds {index.dtype} vectors, its record says {quantizer.dtype}")
        return cls(index, distance, quantizer)

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
            self._index.add(
                np.asarray(keys, dtype=np.uint64), self.quantizer.encode(vectors), threads=threads
            )

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
        """The vectors the file holds under ``keys`` (None for a key it lacks), as
        float32 copies of what it keeps (the quantizer's encoding, for a compact graph)."""
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
        encoded, factors = self.quantizer.encode_queries(queries)
        try:
            found = self._index.search(encoded, k)
        finally:
            self.set_expansion_search(depth)
        keys = np.atleast_2d(found.keys)
        distances = np.atleast_2d(found.distances)
        # One query gives Matches (already cut to its count), several give BatchMatches.
        one_query_count: int = keys.shape[1]
        counts = np.atleast_1d(getattr(found, "counts", one_query_count))
        results = []
        for row_keys, row_distances, count, factor in zip(keys, distances, counts, factors):
            row_keys = row_keys[:count]
            # A compact graph's products and squared distances are in its own units:
            # the factor brings them back to the float32 scale.
            row_distances = row_distances[:count].astype(np.float64)
            if self.distance == "euclidean":
                scores = euclidean_score(row_distances / factor)
            else:
                # usearch's inner-product distance is 1 - dot, for every vector type.
                scores = (1.0 - row_distances) / factor
            results.append((row_keys, scores.astype(np.float32)))
        return results

    def expected_scores(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The query and rows (prepared float32) as this graph compares them: float64
        copies whose exact scores are the ones a sound file claims for these rows (the
        float32 vectors themselves, for a float32 graph)."""
        import numpy as np

        encoded_query, factors = self.quantizer.encode_queries(query[None, :])
        encoded_rows = self.quantizer.encode(rows).astype(np.float64)
        wide_query = encoded_query[0].astype(np.float64)
        if self.quantizer.dtype != "i8":
            return wide_query, encoded_rows
        factor = float(factors[0])
        if self.distance == "euclidean":
            root = np.sqrt(factor)  # the one scale both sides were multiplied by
            return wide_query / root, encoded_rows / root
        return wide_query / factor, encoded_rows

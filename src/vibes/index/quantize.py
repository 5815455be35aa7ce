"""Compact copies of a collection's vectors: float16 or int8 instead of float32.

The graph (:mod:`vibes.index.hnsw`) and scans of every item (:mod:`vibes.index.scan`)
can hold their vectors in 2 or 1 bytes a dimension instead of 4, which halves or
quarters the memory they take and the bytes a search reads. Whatever finds the
candidates, the final hits are always scored again from the stored float32 vectors, so
the scores a search returns are exact; quantisation can only change which items reach
that last step, and asking for more candidates than needed keeps that from happening in
practice (bench/bench_quantized.py measures it).

int8 scales each dimension to -peak..peak by the largest magnitude it holds in the
collection (cosine and dot distances, whose ranking a per-dimension scale preserves when
the query is divided by the same scales), or scales every dimension alike (euclidean
distance, which per-dimension scales would distort). Items added later whose values
exceed that range are clipped; when a fold would clip many of them (:meth:`Quantizer.fits`),
the index is built again instead, with scales fitted to every item.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import VibesError

if TYPE_CHECKING:
    import numpy as np

#: The kinds of vector an index can hold, as ``vibes index --quantize`` names them.
DTYPES = ("f32", "f16", "i8")
#: The largest magnitude an int8 component takes (-127..127, symmetric).
INT8_PEAK = 127.0
#: The share of components clipped by more than a quarter above which int8 scales are
#: fitted again.
CLIPPED_SHARE = 1e-3
CLIPPED_BEYOND = 1.25
#: Rows converted at once.
BLOCK = 16_384
#: Candidates a compact search re-scores from float32, beyond twice the hits asked for.
RESCORE_MARGIN = 100


def _blocks(
    vectors: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray] | None
) -> Iterator[np.ndarray]:
    """``vectors`` a block of rows at a time, each passed through ``prepare`` if given."""
    for start in range(0, len(vectors), BLOCK):
        block = vectors[start : start + BLOCK]
        yield block if prepare is None else prepare(block)


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise VibesError(f"Unknown vector type {dtype!r}: use one of {', '.join(DTYPES)}")
    return dtype


def bytes_per_dimension(dtype: str) -> int:
    return {"f32": 4, "f16": 2, "i8": 1}[dtype]


@dataclass(frozen=True)
class Quantizer:
    """How vectors prepared for search (unit length for cosine) become compact ones, and
    how a compact search's distances become scores on the float32 scale."""

    dtype: str = "f32"
    distance: str = "cosine"
    #: int8 only: each dimension's multiplier (the same for all, for euclidean distance).
    scales: tuple[float, ...] | None = None
    #: int8 only: the largest magnitude an item's component takes.
    peak: float = INT8_PEAK

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        distance: str,
        dtype: str,
        peak: float = INT8_PEAK,
        *,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Quantizer:
        """A quantizer for these prepared vectors (or for ``prepare`` of them, applied a
        block at a time): int8 scales come from their range, so that items take
        -peak..peak."""
        import numpy as np

        if check_dtype(dtype) != "i8":
            return cls(dtype, distance)
        magnitudes = np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0)
        for block in _blocks(vectors, prepare):  # no full-size temporary
            largest = np.abs(block).max(axis=0)
            # Vectors stored with NaN or infinity (by other tools) say nothing of the range.
            magnitudes = np.fmax(magnitudes, np.where(np.isfinite(largest), largest, 0.0))
        if distance == "euclidean":
            magnitudes[:] = magnitudes.max(initial=0.0)
        magnitudes[magnitudes == 0] = 1.0
        return cls(dtype, distance, tuple(float(s) for s in peak / magnitudes), peak)

    @property
    def compact(self) -> bool:
        return self.dtype != "f32"

    @property
    def tolerance(self) -> float:
        """How far a score from these vectors may stray from the float32 one, relative
        to the size of the vectors compared (float32: its rounding; compact types: their
        precision, with room to spare; damage is off by whole units)."""
        from .exact import SCORE_TOLERANCE

        return {"f32": SCORE_TOLERANCE, "f16": 1e-2}.get(self.dtype, 5e-2)

    def fits(self, vectors: np.ndarray) -> bool:
        """Whether these prepared vectors are encoded without clipping more than a
        sliver of their components by more than a quarter (at most 1 in 1,000): items
        added long after the scales were fitted may range wider (or the collection was
        empty then); a value a little past the largest seen is harmless."""
        import numpy as np

        if self.dtype != "i8" or not len(vectors):
            return True
        clipped = 0
        for start in range(0, len(vectors), BLOCK):
            scaled = np.abs(np.nan_to_num(vectors[start : start + BLOCK] * self._scales()))
            clipped += int(np.count_nonzero(scaled > self.peak * CLIPPED_BEYOND))
        return clipped <= CLIPPED_SHARE * vectors.size

    def _scales(self) -> np.ndarray:
        return self._scale_arrays[0]

    @cached_property
    def _scale_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """int8's scales and their reciprocals as float32 arrays, made once: a search
        encodes its query with them, and converting the tuple took a third of that."""
        import numpy as np

        assert self.scales is not None
        scales = np.asarray(self.scales, dtype=np.float32)
        with np.errstate(divide="ignore"):
            return scales, (1.0 / scales).astype(np.float32)

    def encode(
        self,
        vectors: np.ndarray,
        *,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Prepared vectors (n, d) (or ``prepare`` of them) in this quantizer's type,
        converted a block at a time (a million vectors would otherwise take several
        float32 temporaries of 1.5 GB)."""
        import numpy as np

        if self.dtype == "f32" and prepare is None:
            return np.asarray(vectors, dtype=np.float32)
        if prepare is None and len(vectors) <= BLOCK:
            # One block (a search re-scoring its hits): no second array to copy it into.
            return self._encode_block(np.asarray(vectors, dtype=np.float32, order="C"))
        kind = {"f32": np.float32, "f16": np.float16, "i8": np.int8}[self.dtype]
        encoded = np.empty(vectors.shape, dtype=kind)
        for start, block in zip(range(0, len(vectors), BLOCK), _blocks(vectors, prepare)):
            encoded[start : start + BLOCK] = self._encode_block(np.asarray(block, np.float32))
        return encoded

    def _encode_block(self, block: np.ndarray) -> np.ndarray:
        """float32 rows in this quantizer's type (NaN as 0, infinities as the largest
        value), working in place on temporaries: every search re-scoring a compact
        graph's hits comes here."""
        import numpy as np

        if self.dtype == "f16":
            with np.errstate(over="ignore"):  # beyond float16's range: its largest value
                return np.nan_to_num(block.astype(np.float16), copy=False)
        if self.dtype == "f32":
            return np.nan_to_num(block)
        scaled = block * self._scales()
        np.rint(scaled, out=scaled)
        np.clip(scaled, -self.peak, self.peak, out=scaled)  # infinities too
        missing = np.isnan(scaled)
        if missing.any():
            scaled[missing] = 0.0
        return scaled.astype(np.int8)

    def encode_queries(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prepared queries (m, d) in this quantizer's type, with each query's factor: a
        compact dot product (or squared distance) divided by it is on the float32 scale.

        For cosine and dot, an int8 query is divided by the dimension scales (so that its
        products with the scaled items stay proportional to the true ones) and then
        stretched to fill -127..127, the best precision it can have; for euclidean it
        takes the items' one scale, and its squared distances are divided by its square.
        """
        import numpy as np

        queries = np.asarray(queries, dtype=np.float32)
        if self.dtype != "i8":
            return self.encode(queries), np.ones(queries.shape[0], dtype=np.float64)
        scales, inverses = self._scale_arrays
        if self.distance == "euclidean":
            scale = float(scales[0]) if len(scales) else 1.0
            # Queries take the full range (they are not stored, and nothing saturates).
            encoded = np.clip(np.rint(np.nan_to_num(queries * scale)), -INT8_PEAK, INT8_PEAK)
            factors = np.full(queries.shape[0], scale * scale, dtype=np.float64)
            return encoded.astype(np.int8), factors
        divided = queries * inverses
        peaks = np.abs(divided).max(axis=1)
        peaks[peaks == 0] = 1.0
        stretch = INT8_PEAK / peaks
        # No clipping needed: each query's largest component becomes exactly the peak (a
        # float32 rounding either way of it rounds back to it), and queries are finite.
        encoded = np.rint(divided * stretch[:, None]).astype(np.int8)
        return encoded, stretch.astype(np.float64)

    def to_json(self) -> dict[str, Any]:
        """What an index's parameters record of it (``quantize``, and int8's scales)."""
        found: dict[str, Any] = {"quantize": self.dtype}
        if self.scales is not None:
            found["scales"] = list(self.scales)
        return found

    @classmethod
    def recorded(cls, params: str | None, distance: str) -> Quantizer:
        """:meth:`from_params`, or float32 when the record is unreadable (an index that
        cannot be opened then says why; what reports on it need not fail)."""
        try:
            return cls.from_params(params, distance)
        except (VibesError, ValueError):
            return cls("f32", distance)

    @classmethod
    def from_params(cls, params: str | None, distance: str) -> Quantizer:
        """The quantizer recorded in an index's parameters (float32 when none is)."""
        found = json.loads(params or "{}")
        dtype = check_dtype(found.get("quantize", "f32"))
        scales = found.get("scales")
        if dtype == "i8" and not scales:
            raise VibesError("The index's record has int8 vectors but no scales")
        return cls(dtype, distance, tuple(float(s) for s in scales) if scales else None)

    def vector_bytes(self, count: int, dimensions: int) -> int:
        """The bytes ``count`` vectors of ``dimensions`` take in this type."""
        return count * dimensions * bytes_per_dimension(self.dtype)

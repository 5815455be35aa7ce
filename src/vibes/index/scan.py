"""Scans of every item over compact (int8 or float16) vectors, re-scored from float32.

A scan of a million float32 vectors reads 1.5 GB and is bound by memory bandwidth;
their int8 copies are a quarter of that. NumPy has no fast int8 matrix product, so the
scan runs in ONNX Runtime (already loaded for the models), whose MatMulInteger kernel
multiplies unsigned by signed bytes with the processor's integer dot-product
instructions; NumPy's partial sort picks the candidates. float16 copies are scanned by
usearch's exact search (NumPy has no fast float16 product either): half the memory,
but slower than float32 (bench/bench_quantized.py).

The candidates are read back as stored float32 vectors and scored exactly, so the scores
returned are exact; which candidates are read is decided by the compact estimates (see
:meth:`QuantizedMatrix.search_many`). An explicit exact search reads float32 instead
(``MatrixCache.get(..., float32=True)``): estimates cannot always tell near-duplicates
apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .exact import ExactIndex, Positions, top_k
from .quantize import RESCORE_MARGIN, Quantizer

if TYPE_CHECKING:
    import numpy as np

    from ..store.base import VectorMatrix

#: Candidates one scan ranks (their estimates say which must be scored exactly).
SCAN_DEPTH = 1024
#: The largest magnitude of an item's int8 component in the scan (see __init__).
SCAN_PEAK = 63.0

_session: Any = None
_sessions_lock = threading.Lock()


def _int8_session() -> Any:
    """An ONNX Runtime session that multiplies uint8 queries (m, d) by an int8 matrix
    stored dimension-major (d, n), into int32 products (m, n).

    The queries are int8 ones shifted by 128; the shift is taken off afterwards (minus
    128 x each row's sum), not given to MatMulInteger as its zero point, which takes
    its slow path: 38 ms instead of 13 for a million rows here."""
    global _session
    with _sessions_lock:
        if _session is not None:
            return _session
        import onnxruntime
        from onnx import TensorProto, helper

        inputs = [
            helper.make_tensor_value_info("queries", TensorProto.UINT8, ["m", "d"]),
            helper.make_tensor_value_info("matrix", TensorProto.INT8, ["d", "n"]),
        ]
        nodes = [helper.make_node("MatMulInteger", ["queries", "matrix"], ["products"])]
        outputs = [helper.make_tensor_value_info("products", TensorProto.INT32, ["m", "n"])]
        graph = helper.make_graph(nodes, "int8_scan", inputs, outputs)
        # IR version 8 / opset 13: what every ONNX Runtime vibes accepts (>= 1.17) reads.
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 0  # one thread per physical core
        _session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return _session


class QuantizedMatrix(Positions):
    """A collection's vectors in compact form for scans of every item; the same interface
    as :class:`~vibes.index.exact.ExactIndex` (``positions``, ``search_many``)."""

    def __init__(
        self,
        ids: list[str],
        vectors: np.ndarray,
        distance: str,
        dtype: str,
        fetch: Callable[[Sequence[str]], VectorMatrix],
    ) -> None:
        """``vectors``: the stored float32 vectors, in the order of ``ids``; ``fetch``
        reads stored vectors by id for the final scoring."""
        import numpy as np

        self.ids = ids
        self.dimensions = int(vectors.shape[1])
        self.distance = distance
        self.fetch = fetch

        # Prepared a block at a time: a full-size prepared copy of a million vectors
        # would take 1.5 GB more.
        def prepare(block: np.ndarray) -> np.ndarray:
            return ExactIndex.prepare(block, distance)

        # Scales fitted to these vectors (not the graph's, which may be older): nothing
        # is clipped. Items take -63..63, not -127..127: on processors without integer
        # dot-product instructions (AVX2 alone), ONNX Runtime adds two products of an
        # unsigned and a signed byte in 16 bits, which 255 x 127 x 2 overflows (and which
        # silently saturates); 255 x 63 x 2 fits.
        quantizer = Quantizer.fit(vectors, distance, dtype, peak=SCAN_PEAK, prepare=prepare)
        self.quantizer = quantizer
        encoded = quantizer.encode(vectors, prepare=prepare)
        #: int8: what to take off each row's product with a shifted query (128 x the
        #: row's sum; for euclidean, 2 x that plus |x|^2), in int32.
        self.offset = np.zeros(0, dtype=np.int32)
        if dtype == "i8":
            sums = encoded.sum(axis=1, dtype=np.int32)
            if distance == "euclidean":
                squares = np.einsum("ij,ij->i", encoded, encoded, dtype=np.int32)
                self.offset = 256 * sums + squares
            else:
                self.offset = 128 * sums
        # int8 dimension-major: the layout MatMulInteger reads as its right-hand side.
        self.matrix = np.ascontiguousarray(encoded.T) if quantizer.dtype == "i8" else encoded

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes) + int(self.offset.nbytes)

    def candidates(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions (m, k) of the ``k`` best rows by the compact vectors for prepared
        queries, best first, with their estimated ranking values (see :meth:`values`);
        ``rows`` limits the scan to those positions."""
        import numpy as np

        size = len(self.ids) if rows is None else len(rows)
        k = min(k, size)
        if self.quantizer.dtype == "i8":
            encoded, factors = self.quantizer.encode_queries(queries)
            matrix = self.matrix if rows is None else self.matrix[:, rows]
            offset = self.offset if rows is None else self.offset[rows]
            shifted = (encoded.astype(np.int16) + 128).astype(np.uint8)
            products = _int8_session().run(None, {"queries": shifted, "matrix": matrix})[0]
            # Ranking values in whole numbers: x.q, or for euclidean 2 x.q - |x|^2 (the
            # offset holds the shift's 128 x sum(x), and |x|^2).
            ranked = products  # in place: a million-row copy costs as much as the pick
            if self.distance == "euclidean":
                ranked *= 2
            ranked -= offset[None, :]
            found = np.stack([top_k(row, k) for row in ranked])
            best = np.take_along_axis(ranked, found, axis=1).astype(np.float64)
            if self.distance == "euclidean":
                # 2 x.q - |x|^2 - |q|^2 = -|x - q|^2, in scaled units.
                wide = encoded.astype(np.float64)
                squares = np.einsum("ij,ij->i", wide, wide)
                values = (best - squares[:, None]) / factors[:, None]
            else:
                values = best / factors[:, None]
        else:
            found, values = self._scan_float16(queries, k, rows)
        return (found if rows is None else rows[found]), values

    def _scan_float16(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        from .hnsw import usearch_module

        matrix = self.matrix if rows is None else self.matrix[rows]
        metric = "l2sq" if self.distance == "euclidean" else "ip"
        found = usearch_module().search(
            matrix, queries.astype(np.float16), k, metric, exact=True, threads=0
        )
        distances = np.atleast_2d(found.distances).astype(np.float64)
        # usearch's distances: 1 - dot, or the squared euclidean distance.
        values = -distances if self.distance == "euclidean" else 1.0 - distances
        return np.atleast_2d(found.keys).astype(np.int64), values

    def values(self, query: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        """Ranking values (higher is better) of prepared rows for one prepared query, in
        float64: the dot product, or minus the squared euclidean distance."""
        import numpy as np

        rows64, query64 = prepared.astype(np.float64), query.astype(np.float64)
        if self.distance == "euclidean":
            return -np.einsum("ij,ij->i", rows64 - query64, rows64 - query64)
        return rows64 @ query64

    def search_many(
        self, queries: np.ndarray, n: int, *, rows: np.ndarray | None = None
    ) -> list[list[tuple[str, float]]]:
        """The ``n`` best (id, score) pairs for each prepared query, best first, scored
        from the stored float32 vectors; ``rows`` limits the search to those positions.

        One compact scan ranks ``SCAN_DEPTH`` candidates; the best 2n + 100 are read back
        and scored exactly. Every candidate whose compact estimate, plus twice the
        largest error seen so far, reaches the n-th exact score could still beat it, so
        those are scored too; when the last candidate of the scan could, the scan goes
        four times as deep (up to every row). The largest error seen stands for errors
        not seen, so this is not exact by construction (an euclidean int8 case missed the
        true best among near-duplicates): explicit exact searches read float32 instead
        (``MatrixCache.get(..., float32=True)``)."""
        import numpy as np

        if n <= 0 or (rows is not None and rows.shape[0] == 0) or not self.ids:
            return [[] for _ in range(queries.shape[0])]
        size = len(self.ids) if rows is None else len(rows)
        depth = min(size, max(SCAN_DEPTH, 2 * n + RESCORE_MARGIN))
        found, estimates = self.candidates(queries, depth, rows)
        results = []
        for i in range(queries.shape[0]):
            query, positions, values, scanned = queries[i], found[i], estimates[i], depth
            take = min(len(positions), 2 * n + RESCORE_MARGIN)
            stored: dict[int, np.ndarray] = {}
            while True:
                nth, error = self._rescore(query, positions[:take], values[:take], n, stored)
                # Candidates (best first) that could still reach the n-th exact score.
                reach = int(np.count_nonzero(values + 2 * error + 1e-9 >= nth))
                if reach < len(positions) or scanned >= size:
                    if reach <= take:
                        break  # every contender was scored exactly
                    take = min(len(positions), reach)
                    continue
                scanned = min(size, scanned * 4)  # contenders may lie past the scan
                more, more_values = self.candidates(query[None, :], scanned, rows)
                positions, values = more[0], more_values[0]
                take = min(len(positions), max(take, reach))
            # In row order, as an exact scan meets them: items with equal scores then
            # come in the same order as an exact search gives them.
            chosen = sorted(int(p) for p in positions[:take] if int(p) in stored)
            exact = ExactIndex(
                [self.ids[p] for p in chosen],
                np.stack([stored[p] for p in chosen])
                if chosen
                else np.empty((0, self.dimensions), dtype=np.float32),
                self.distance,
            )
            results.append(exact.search_many(query[None, :], n)[0])
        return results

    def _rescore(
        self,
        query: np.ndarray,
        positions: np.ndarray,
        estimates: np.ndarray,
        n: int,
        stored: dict[int, np.ndarray],
    ) -> tuple[float, float]:
        """Read the candidates' stored vectors (those not in ``stored`` yet) and return
        the n-th best exact ranking value among them and the largest gap between a
        candidate's estimate and its exact value (see :meth:`search_many`)."""
        import numpy as np

        missing = [int(p) for p in positions if int(p) not in stored]
        if missing:
            read = self.fetch([self.ids[p] for p in missing])
            by_id = dict(zip(read.ids, read.vectors))
            for p in missing:
                vector = by_id.get(self.ids[p])
                if vector is not None:  # None: deleted meanwhile
                    stored[p] = vector
        present = [j for j, p in enumerate(positions) if int(p) in stored]
        if len(present) < n:
            return -np.inf, 0.0
        vectors = np.stack([stored[int(positions[j])] for j in present])
        truth = self.values(query, ExactIndex.prepare(vectors, self.distance))
        error = float(np.max(np.abs(truth - estimates[present])))
        return float(np.sort(truth)[-n]), error

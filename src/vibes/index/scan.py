"""Exact search over compact (int8 or float16) vectors, re-scored from float32.

An exact scan of a million float32 vectors reads 1.5 GB and is bound by memory
bandwidth; their int8 copies are a quarter of that. NumPy has no fast int8 matrix
product, so the scan runs in ONNX Runtime (already loaded for the models), whose
MatMulInteger kernel multiplies unsigned by signed bytes with the processor's integer
dot-product instructions, and whose TopK picks the candidates without sorting a million
scores. float16 copies are scanned by usearch's exact search (NumPy has no fast float16
product either): half the memory, but slower than float32 (bench/bench_quantized.py).

The best few candidates (a fixed margin over the hits asked for) are then read back as
stored float32 vectors and scored exactly, so the scores returned are an exact search's
(bench/bench_quantized.py measures how often a true hit misses the margin: never, at
recall@10 = 1.000 on the Debian vectors).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .exact import ExactIndex, Positions
from .quantize import BLOCK, RESCORE_MARGIN, Quantizer

if TYPE_CHECKING:
    import numpy as np

    from ..store.base import VectorMatrix

#: The largest magnitude of an item's int8 component in the scan (see __init__).
SCAN_PEAK = 63.0

_sessions: dict[bool, Any] = {}
_sessions_lock = threading.Lock()


def _int8_session(with_bias: bool) -> Any:
    """An ONNX Runtime session that scores uint8 queries (zero point 128, so they stand
    for int8 ones) against an int8 matrix stored dimension-major (d, n), adds a per-row
    bias when asked, and returns the k best (scores, positions) of each query."""
    with _sessions_lock:
        session = _sessions.get(with_bias)
        if session is not None:
            return session
        import onnxruntime
        from onnx import TensorProto, helper

        inputs = [
            helper.make_tensor_value_info("queries", TensorProto.UINT8, ["m", "d"]),
            helper.make_tensor_value_info("matrix", TensorProto.INT8, ["d", "n"]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ]
        zero = helper.make_tensor("zero", TensorProto.UINT8, [], [128])
        nodes = [
            helper.make_node("MatMulInteger", ["queries", "matrix", "zero"], ["products"]),
            helper.make_node("Cast", ["products"], ["scores"], to=TensorProto.FLOAT),
        ]
        scored = "scores"
        if with_bias:
            inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["n"]))
            nodes.append(helper.make_node("Add", ["scores", "bias"], ["biased"]))
            scored = "biased"
        nodes.append(
            helper.make_node("TopK", [scored, "k"], ["best", "positions"], axis=-1, largest=1)
        )
        outputs = [
            helper.make_tensor_value_info("best", TensorProto.FLOAT, ["m", "k"]),
            helper.make_tensor_value_info("positions", TensorProto.INT64, ["m", "k"]),
        ]
        graph = helper.make_graph(nodes, "int8_scan", inputs, outputs, [zero])
        # IR version 8 / opset 13: what every ONNX Runtime vibes accepts (>= 1.17) reads.
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 0  # one thread per physical core
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        _sessions[with_bias] = session
        return session


class QuantizedMatrix(Positions):
    """A collection's vectors in compact form for exact search; the same interface as
    :class:`~vibes.index.exact.ExactIndex` (``positions``, ``search_many``)."""

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
        # Prepared and encoded a block at a time: a full-size prepared copy of a million
        # vectors would take 1.5 GB more.
        blocks = range(0, len(vectors), BLOCK)
        magnitudes = np.zeros(self.dimensions)
        for start in blocks:
            block = ExactIndex.prepare(vectors[start : start + BLOCK], distance)
            magnitudes = np.fmax(magnitudes, np.abs(block).max(axis=0, initial=0.0))
        # Scales fitted to these vectors (not the graph's, which may be older): nothing
        # is clipped. Items take -63..63, not -127..127: on processors without integer
        # dot-product instructions (AVX2 alone), ONNX Runtime adds two products of an
        # unsigned and a signed byte in 16 bits, which 255 x 127 x 2 overflows (and which
        # silently saturates); 255 x 63 x 2 fits.
        quantizer = Quantizer.from_magnitudes(magnitudes, distance, dtype, peak=SCAN_PEAK)
        self.quantizer = quantizer
        kind = np.int8 if dtype == "i8" else np.float16
        encoded = np.empty((len(vectors), self.dimensions), dtype=kind)
        for start in blocks:
            block = ExactIndex.prepare(vectors[start : start + BLOCK], distance)
            encoded[start : start + BLOCK] = quantizer.encode(block)
        self.bias: np.ndarray | None = None
        if distance == "euclidean" and dtype == "i8":
            # Nearest first = largest (x.q - |x|^2 / 2), in the units the scan computes.
            squares = np.einsum("ij,ij->i", encoded, encoded, dtype=np.float32)
            self.bias = (-0.5 * squares).astype(np.float32)
        # int8 dimension-major: the layout MatMulInteger reads as its right-hand side.
        self.matrix = np.ascontiguousarray(encoded.T) if quantizer.dtype == "i8" else encoded

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes) + (int(self.bias.nbytes) if self.bias is not None else 0)

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
            feeds: dict[str, Any] = {
                "queries": (encoded.astype(np.int16) + 128).astype(np.uint8),
                "matrix": matrix,
                "k": np.array([k], dtype=np.int64),
            }
            if self.bias is not None:
                feeds["bias"] = self.bias if rows is None else self.bias[rows]
            best, found = _int8_session(self.bias is not None).run(["best", "positions"], feeds)
            best = best.astype(np.float64)
            if self.distance == "euclidean":
                # best = x.q - |x|^2 / 2 in scaled units: -|x - q|^2 = 2 best - |q|^2.
                wide = encoded.astype(np.float64)
                squares = np.einsum("ij,ij->i", wide, wide)
                values = (2 * best - squares[:, None]) / factors[:, None]
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

        The compact scan picks candidates, which are read back and scored exactly. The
        search is taken as settled once the worst candidate's compact estimate, plus
        twice the largest error seen among the candidates, stays below the n-th exact
        score: nothing left out can then reach the top n. Otherwise (items closer
        together than the compact vectors can tell, near-duplicates) it takes four times
        as many candidates, up to every row, so that an exact search stays exact."""
        if n <= 0 or (rows is not None and rows.shape[0] == 0) or not self.ids:
            return [[] for _ in range(queries.shape[0])]
        size = len(self.ids) if rows is None else len(rows)
        k = min(size, 2 * n + RESCORE_MARGIN)
        found, estimates = self.candidates(queries, k, rows)
        results = []
        for i in range(queries.shape[0]):
            positions, values, depth = found[i], estimates[i], k
            while True:
                ranking, settled = self._rescore(queries[i], positions, values, n)
                if settled or depth >= size:
                    break
                depth = min(size, depth * 4)
                more, more_values = self.candidates(queries[i : i + 1], depth, rows)
                positions, values = more[0], more_values[0]
            results.append(ranking)
        return results

    def _rescore(
        self, query: np.ndarray, positions: np.ndarray, estimates: np.ndarray, n: int
    ) -> tuple[list[tuple[str, float]], bool]:
        """The n best of the candidates by their stored vectors, and whether no row
        outside them can beat the n-th (see :meth:`search_many`)."""
        import numpy as np

        stored = self.fetch([self.ids[p] for p in positions])
        exact = ExactIndex(stored.ids, stored.vectors, self.distance)
        ranking = exact.search_many(query[None, :], n)[0]
        if len(ranking) < n or len(stored.ids) < len(positions):
            return ranking, False  # rows gone meanwhile: look wider
        order = exact.positions([self.ids[p] for p in positions])
        truth = self.values(query, exact.matrix[order])
        error = float(np.max(np.abs(truth - estimates))) if len(truth) else 0.0
        nth = float(np.sort(truth)[-n])
        boundary = float(estimates.min())
        return ranking, boundary + 2 * error + 1e-9 < nth

"""Exact nearest-neighbour search: every vector in one float32 matrix, scored by BLAS.

Thread-safe once built: searches only read the matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DimensionMismatchError, VibesError

DISTANCES = ("cosine", "dot", "euclidean")


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise VibesError(f"Unknown distance {distance!r}: use one of {', '.join(DISTANCES)}")
    return distance


def prepare_queries(queries: np.ndarray, dimensions: int, distance: str) -> np.ndarray:
    """Queries as a float32 (m, d) matrix, unit length for cosine."""
    matrix = np.asarray(queries, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dimensions:
        raise DimensionMismatchError(
            f"Query vector has {matrix.shape[-1]} dimensions; "
            f"the collection holds {dimensions}-dimensional vectors"
        )
    if not np.isfinite(matrix).all():
        raise VibesError("Query vector contains NaN or infinity")
    if distance == "cosine":
        norms = np.linalg.norm(matrix, axis=1)
        if (norms == 0).any():
            raise VibesError("Query vector is all zeros; it matches nothing")
        matrix = matrix / norms[:, None]
    return matrix


def euclidean_score(squared_distance: np.ndarray) -> np.ndarray:
    """Euclidean distance as a score where higher is better: 1 / (1 + distance)."""
    return 1.0 / (1.0 + np.sqrt(np.maximum(squared_distance, 0.0)))


#: How far an approximate index's score may stray from the score computed again from the
#: stored vector before the index is called damaged, relative to the size of what is
#: compared (see :func:`scores_agree`). usearch scores float32 vectors in float32, so an
#: honest score is off by at most about dimensions x 6e-8 of that size (2e-5 at 384
#: dimensions, 2.5e-4 at 4,096); damage (garbage bytes read as floats) is off by whole
#: units or by 1e37. The gap is wide, so the bound is generous: a false alarm would make
#: every search exact until a rebuild, while a small error is harmless anyway, since the
#: scores returned are the re-computed ones.
SCORE_TOLERANCE = 1e-3
#: Absolute slack for the float32 rounding of the score itself (1 - distance, or
#: 1 / (1 + distance)), which does not shrink with the vectors.
SCORE_SLACK = 1e-6


def scores_agree(
    distance: str,
    query: np.ndarray,
    rows: np.ndarray,
    claimed: np.ndarray,
    tolerance: float = SCORE_TOLERANCE,
) -> np.ndarray:
    """For each row, whether ``claimed`` (an index's score of the prepared ``query``
    against the prepared row) is the row's true score, within float32 error.

    The truth is computed in float64, directly: for euclidean distance as the norm of the
    difference, not through the expansion the matrix search uses, whose cancellation
    would blur near-identical vectors. Cosine and dot scores are compared in units of
    |query| x |row| (the largest a product of those vectors can be, and the scale of its
    rounding); euclidean scores as distances, relative to the distance. ``tolerance`` is
    relative to those units (a float16 graph may sum in half precision: it takes more).
    """
    query64 = np.asarray(query, dtype=np.float64)
    rows64 = np.asarray(rows, dtype=np.float64)
    stated = np.asarray(claimed, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if distance == "euclidean":
            true = np.linalg.norm(rows64 - query64[None, :], axis=1)
            stated = 1.0 / stated - 1.0  # back from the score 1 / (1 + distance)
            bound = tolerance * true + SCORE_SLACK * (1.0 + true)
        else:
            true = rows64 @ query64
            scale = np.linalg.norm(rows64, axis=1) * np.linalg.norm(query64)
            bound = tolerance * scale + SCORE_SLACK
        agree = np.isfinite(stated) & (np.abs(stated - true) <= bound)
    # A stored vector holding NaN or infinity (written by another tool) has no true score
    # to hold the index to: that is the data's fault, not the file's.
    return agree | ~np.isfinite(true)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores of a 1-d array, best first; equal scores in
    the order of their positions, NaN after every number.

    The k-th best value is found by NumPy's vectorised ``partition`` and the winners by
    one comparison pass: at a million scores that takes a quarter of the time of
    ``argpartition``, the largest cost of a scan after the product itself."""
    size = scores.shape[0]
    k = min(k, size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    # Lower is better in ``keys``. Floats are negated, which sends NaN last (partition
    # and sort both put it at the end); integers have no NaN and are not negated, since
    # the negation of the smallest integer overflows.
    floats = scores.dtype.kind == "f"
    keys, kth = (-scores, k - 1) if floats else (scores, size - k)
    if k == size:
        top = np.arange(size)
    else:
        bound = np.partition(keys, kth)[kth]
        if floats and np.isnan(bound):  # fewer than k numbers: every number, then NaNs
            ahead, level = ~np.isnan(keys), np.isnan(keys)
        elif floats:
            ahead, level = keys < bound, keys == bound
        else:
            ahead, level = keys > bound, keys == bound
        better = np.flatnonzero(ahead)
        # Only as many of the scores equal to the k-th as fill k: a million equal scores
        # would otherwise all be sorted.
        top = np.concatenate([better, np.flatnonzero(level)[: k - len(better)]])
    ranked = scores[top]
    # Bitwise not reverses integers' (and booleans') order without overflowing.
    order = np.argsort(-ranked if floats else ~ranked, kind="stable")
    return top[order]


class Positions:
    """Positions of items by id, in the order of ``ids`` (built on first use)."""

    ids: list[str]
    _positions: dict[str, int] | None = None

    def position(self, item_id: str) -> int | None:
        if self._positions is None:
            self._positions = {item_id: i for i, item_id in enumerate(self.ids)}
        return self._positions.get(item_id)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """The positions of those of ``ids`` present, in their order."""
        found = (self.position(item_id) for item_id in ids)
        return np.fromiter((p for p in found if p is not None), dtype=np.int64)


class ExactIndex(Positions):
    """A collection's vectors as one float32 matrix (row-normalised for cosine)."""

    def __init__(self, ids: list[str], vectors: np.ndarray, distance: str = "cosine") -> None:
        self.ids = ids
        self.dimensions = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self.distance = check_distance(distance)
        self.matrix = self.prepare(vectors, distance)
        self.squared_norms = (
            np.einsum("ij,ij->i", self.matrix, self.matrix) if distance == "euclidean" else None
        )

    @staticmethod
    def prepare(matrix: np.ndarray, distance: str) -> np.ndarray:
        """Stored vectors as searched: unit rows for cosine (an all-zero row stays zero)."""
        matrix = matrix.astype(np.float32, copy=False)
        if distance != "cosine":
            return matrix
        norms = np.linalg.norm(matrix, axis=1)
        norms[norms == 0] = 1.0
        return matrix / norms[:, None]

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, queries: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Scores (higher is better) of prepared queries (m, d) against all rows or ``rows``."""
        matrix = self.matrix if rows is None else self.matrix[rows]
        products = queries @ matrix.T
        if self.distance != "euclidean":
            return products
        assert self.squared_norms is not None
        norms = self.squared_norms if rows is None else self.squared_norms[rows]
        query_norms = np.einsum("ij,ij->i", queries, queries)
        return euclidean_score(norms[None, :] - 2 * products + query_norms[:, None])

    def search_many(
        self, queries: np.ndarray, n: int, *, rows: np.ndarray | None = None
    ) -> list[list[tuple[str, float]]]:
        """The ``n`` best (id, score) pairs for each prepared query, best first; ``rows``
        limits the search to those positions."""
        if rows is not None and rows.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        all_scores = self.scores(queries, rows)
        results = []
        for scores in all_scores:
            top = top_k(scores, n)
            positions = top if rows is None else rows[top]
            results.append([(self.ids[p], float(scores[t])) for p, t in zip(positions, top)])
        return results

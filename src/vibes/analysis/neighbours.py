"""Exact nearest neighbours of many points at once, by blocked matrix products.

Every pass multiplies a block of query rows by the whole matrix, keeps each row's best
``n`` with a partial sort, and drops the block: memory stays at one block of scores
(about :data:`BLOCK_BYTES`), never the n × n matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: The scores of one block of rows against every point take at most this much memory.
BLOCK_BYTES = 64 * 2**20


def block_rows(points: int, budget: int = BLOCK_BYTES) -> int:
    """How many query rows a block holds so its scores (float32) fit in ``budget``."""
    return max(16, min(4096, budget // max(4 * points, 1)))


def scores(queries: np.ndarray, matrix: np.ndarray, distance: str) -> np.ndarray:
    """Similarity of every query to every row, higher is nearer: the dot product for
    ``cosine`` (rows already of length 1) and ``dot``, minus the Euclidean distance for
    ``euclidean``."""
    import numpy as np

    product = queries @ matrix.T
    if distance != "euclidean":
        return product
    # |q - m|² = |q|² - 2 q·m + |m|², computed in place on the product's block.
    squared = np.einsum("ij,ij->i", matrix, matrix)
    product *= -2.0
    product += np.einsum("ij,ij->i", queries, queries)[:, None]
    product += squared[None, :]
    np.maximum(product, 0.0, out=product)
    np.sqrt(product, out=product)
    product *= -1.0
    return product


def nearest(
    matrix: np.ndarray,
    n: int,
    *,
    rows: Sequence[int] | np.ndarray | None = None,
    distance: str = "cosine",
    block: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each row of ``matrix`` (or the rows numbered in ``rows``), its ``n`` nearest
    other rows, best first. Yields blocks of (row numbers, neighbour numbers (b, k),
    scores (b, k)) with k = min(n, len(matrix) - 1); a row is never its own neighbour."""
    import numpy as np

    total = len(matrix)
    wanted = np.arange(total) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(n, total - 1)
    if k <= 0 or len(wanted) == 0:
        return
    step = block or block_rows(total)
    for start in range(0, len(wanted), step):
        numbers = wanted[start : start + step]
        found = scores(matrix[numbers], matrix, distance)
        found[np.arange(len(numbers)), numbers] = -np.inf  # not its own neighbour
        if k < total - 1:
            best = np.argpartition(found, total - k, axis=1)[:, total - k :]
        else:
            best = np.broadcast_to(np.arange(total), found.shape).copy()
        best_scores = np.take_along_axis(found, best, axis=1)
        # Best first; ties by row number, so results do not depend on the partition.
        order = np.lexsort((best, -best_scores), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
        if k == total - 1:
            best, best_scores = best[:, :k], best_scores[:, :k]  # drop itself (-inf, last)
        yield numbers, best, best_scores

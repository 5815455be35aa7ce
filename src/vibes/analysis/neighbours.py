"""Exact nearest neighbours of many points at once, by blocked matrix products.

Every pass multiplies a block of query rows by the matrix, keeps each row's best ``n``
with a partial sort, and drops the block: memory stays at a few blocks of scores (about
:data:`BLOCK_BYTES` each), never the n × n matrix. :func:`all_nearest`, for every point
at once, computes each pair's score once (every distance vibes has is symmetric): half
the products of asking :func:`nearest` for every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: The scores of one block of rows against every point take at most this much memory.
BLOCK_BYTES = 64 * 2**20


def block_rows(points: int, budget: int = BLOCK_BYTES) -> int:
    """How many query rows a block holds so its scores (float32) fit in ``budget``."""
    return max(16, min(4096, budget // max(4 * points, 1)))


def scores(queries: np.ndarray, matrix: np.ndarray, distance: str) -> np.ndarray:
    """Similarity of every query to every row, higher is nearer, as searches score it:
    the dot product for ``cosine`` (rows already of length 1) and ``dot``, and
    1 / (1 + distance) for ``euclidean``."""
    import numpy as np

    product = queries @ matrix.T
    if distance != "euclidean":
        return product
    # |q - m|² = |q|² - 2 q·m + |m|², computed in place on the product's block.
    product *= -2.0
    product += np.einsum("ij,ij->i", queries, queries)[:, None]
    product += np.einsum("ij,ij->i", matrix, matrix)[None, :]
    np.maximum(product, 0.0, out=product)
    np.sqrt(product, out=product)
    product += 1.0
    np.reciprocal(product, out=product)
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
            best = _top(found, k)
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


def all_nearest(
    matrix: np.ndarray,
    n: int,
    *,
    distance: str = "cosine",
    block: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's ``n`` nearest other rows, best first (ties by row number), as two
    (rows, k) arrays: neighbour numbers and scores, k = min(n, rows - 1).

    Block b of rows is multiplied by rows b.. onwards only: its scores are the block's
    candidates, and, transposed, the candidates of every later row; each row keeps a
    running best k. Most of a later row's candidates score below its running k-th best
    and are never sorted. ``progress(done, total)`` follows the blocks."""
    import numpy as np

    total = len(matrix)
    k = max(min(n, total - 1), 0)
    best = np.full((total, k), -np.inf, dtype=np.float32)
    where = np.full((total, k), -1, dtype=np.int64)
    if k == 0:
        return where, best
    step = block or block_rows(total)
    for start in range(0, total, step):
        end = min(start + step, total)
        found = scores(matrix[start:end], matrix[start:], distance)
        own = np.arange(end - start)
        found[own, own] = -np.inf  # not its own neighbour
        _keep_best(best, where, start, _top(found, k), found, start)
        if end < total:
            later = found[:, end - start :]
            # Only the later rows that some score of this block beats are merged.
            hit = np.flatnonzero((later > np.min(best[end:], axis=1)).any(axis=0))
            if len(hit):
                candidates = np.ascontiguousarray(later[:, hit].T)
                _keep_best(best, where, end + hit, _top(candidates, k), candidates, start)
        if progress is not None:
            progress(end, total)
    order = np.lexsort((where, -best), axis=1)
    return np.take_along_axis(where, order, axis=1), np.take_along_axis(best, order, axis=1)


#: Columns per chunk when :func:`_top` narrows a wide row by its chunks' maxima.
_CHUNK = 64


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The column numbers of each row's ``k`` largest values (in no order).

    A wide row is cut into chunks of :data:`_CHUNK` columns: its k largest values lie in
    the k chunks with the largest maxima (any other chunk has k maxima above its own), so
    only those chunks are partially sorted."""
    import numpy as np

    rows, width = values.shape
    k = min(k, width)
    if width <= 4 * k * _CHUNK:
        return np.argpartition(values, width - k, axis=1)[:, width - k :]
    maxima = np.maximum.reduceat(values, np.arange(0, width, _CHUNK), axis=1)
    chunks = maxima.shape[1]
    chosen = np.argpartition(maxima, chunks - k, axis=1)[:, chunks - k :]
    columns = (chosen[:, :, None] * _CHUNK + np.arange(_CHUNK)).reshape(rows, -1)
    beyond = columns >= width  # the last chunk may be short
    gathered = np.take_along_axis(values, np.minimum(columns, width - 1), axis=1)
    gathered[beyond] = -np.inf
    top = np.argpartition(gathered, gathered.shape[1] - k, axis=1)[:, -k:]
    return np.take_along_axis(columns, top, axis=1)


def _keep_best(
    best: np.ndarray,
    where: np.ndarray,
    rows: int | np.ndarray,
    top: np.ndarray,
    candidates: np.ndarray,
    offset: int,
) -> None:
    """The given rows (a first row number, or row numbers) keep their k best of what
    they had and of ``candidates``' columns ``top`` (column j is point ``offset + j``)."""
    import numpy as np

    k = best.shape[1]
    picked = np.take_along_axis(candidates, top, axis=1)
    selected = slice(rows, rows + len(top)) if isinstance(rows, int) else rows
    values = np.concatenate([best[selected], picked], axis=1)
    numbers = np.concatenate([where[selected], top + offset], axis=1)
    keep = np.argpartition(values, values.shape[1] - k, axis=1)[:, -k:]
    best[selected] = np.take_along_axis(values, keep, axis=1)
    where[selected] = np.take_along_axis(numbers, keep, axis=1)

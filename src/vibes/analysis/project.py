"""Vectors to two dimensions, for a map of a collection.

- **PCA** (the default): the two directions along which the points vary most. Computed from
  the d × d covariance matrix (one float32 matrix product over the points, then the top two
  eigenvectors), so 60,000 × 384 takes a fraction of a second. Each axis' sign is fixed the
  way scikit-learn fixes it (the largest loading is positive), so a map is reproducible.
- **UMAP** (``umap-learn``, the ``vibes[umap]`` extra): keeps neighbourhoods, so clusters
  separate better, but its cost grows quickly with the number of points. It is fitted on a
  seeded sample of at most :data:`UMAP_FIT_LIMIT` points, on a neighbour graph found by
  exact matrix products; each other point is placed at the weighted mean of its nearest
  fitted points' positions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import VibesError
from .neighbours import all_nearest, block_rows, scores
from .points import Points

if TYPE_CHECKING:
    import numpy as np

__all__ = ["METHODS", "UMAP_FIT_LIMIT", "project"]

#: The projections :func:`project` knows.
METHODS = ("pca", "umap")
#: UMAP is fitted on at most this many points (a seeded sample); the rest are transformed.
UMAP_FIT_LIMIT = 10_000
#: Neighbours in UMAP's graph (each point counted among its own, as umap-learn does).
UMAP_NEIGHBOURS = 15
#: UMAP needs a few points to build a neighbour graph at all.
UMAP_MIN_POINTS = 5


def project(
    points: Points | np.ndarray,
    method: str = "pca",
    seed: int = 0,
    *,
    fit_limit: int = UMAP_FIT_LIMIT,
) -> np.ndarray:
    """The (n, 2) float32 coordinates of ``points`` (a :class:`Points` or an (n, d) matrix),
    by ``method`` ``"pca"`` or ``"umap"``. The same input and ``seed`` give the same map.
    ``fit_limit``: UMAP fits on a sample of at most this many points, then transforms the
    others."""
    import numpy as np

    matrix = points.vectors if isinstance(points, Points) else points
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise VibesError(f"Expected an (n, d) matrix of vectors, got shape {matrix.shape}")
    if method not in METHODS:
        raise VibesError(f"Unknown projection {method!r}: use one of {', '.join(METHODS)}")
    if len(matrix) == 0:
        raise VibesError("Nothing to project: no points")
    if not np.isfinite(matrix).all():
        raise VibesError("Cannot project vectors holding NaN or infinite values")
    if method == "umap":
        return _umap(matrix, seed, fit_limit)
    return _pca(matrix)


def _pca(matrix: np.ndarray) -> np.ndarray:
    import numpy as np
    from scipy.linalg import eigh

    n, d = matrix.shape
    centred = matrix - matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    # The covariance (up to a factor) in one BLAS product: d × d, whatever n is. Its
    # top eigenvectors are PCA's components; no n × d decomposition is needed.
    covariance = (centred.T @ centred).astype(np.float64)
    k = min(2, d)
    values, vectors = eigh(covariance, subset_by_index=[d - k, d - 1])
    components = vectors[:, ::-1].T  # (k, d), the largest variance first
    # scikit-learn's sign convention: each component's largest loading is positive.
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    signs[signs == 0] = 1
    components *= signs[:, None]
    result = np.zeros((n, 2), dtype=np.float32)
    result[:, :k] = centred @ components.T.astype(np.float32)
    return result


def _umap(matrix: np.ndarray, seed: int, fit_limit: int) -> np.ndarray:
    import numpy as np

    n = len(matrix)
    if n < UMAP_MIN_POINTS:
        raise VibesError(
            f"UMAP needs at least {UMAP_MIN_POINTS} points, there are {n}: use --method pca"
        )
    import warnings

    with warnings.catch_warnings():
        # umap-learn warns at import about optional parts (TensorFlow) it cannot find.
        warnings.simplefilter("ignore")
        try:
            import umap
        except ImportError:
            raise VibesError("--method umap needs umap-learn: pip install 'vibes[umap]'") from None
    rng = np.random.default_rng(seed)
    fitted = np.arange(n) if n <= fit_limit else np.sort(rng.choice(n, fit_limit, replace=False))
    sample = np.ascontiguousarray(matrix[fitted])
    k = min(UMAP_NEIGHBOURS, len(fitted))
    # The neighbour graph by exact BLAS products (itself first, as umap-learn expects),
    # not umap-learn's NN-descent: its compilation alone takes a minute in a new process.
    others, scores = all_nearest(sample, k - 1, distance="euclidean")
    indices = np.hstack([np.arange(len(fitted))[:, None], others])
    distances = np.hstack([np.zeros((len(fitted), 1), np.float32), -scores]).astype(np.float32)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=k,
        # Rows of a cosine collection have length 1, where Euclidean order is cosine order.
        metric="euclidean",
        random_state=seed,
        precomputed_knn=(indices, distances),
        # A random start when the sample is tiny: spectral initialisation needs more
        # points than dimensions of the embedding plus one, and a connected graph.
        init="spectral" if len(fitted) > 10 else "random",
    )
    result = np.empty((n, 2), dtype=np.float32)
    with warnings.catch_warnings():
        # "n_jobs overridden to 1 by setting random_state": reproducibility is the point.
        warnings.simplefilter("ignore")
        result[fitted] = reducer.fit_transform(sample)
    if len(fitted) < n:
        rest = np.setdiff1d(np.arange(n), fitted, assume_unique=True)
        result[rest] = _place(matrix, rest, sample, result[fitted], k)
    return result


def _place(
    matrix: np.ndarray, rows: np.ndarray, sample: np.ndarray, layout: np.ndarray, k: int
) -> np.ndarray:
    """Positions for ``rows`` of ``matrix`` that UMAP did not fit: the weighted mean of
    the positions of their ``k`` nearest fitted points, nearer ones weighing more (the
    start umap-learn's own ``transform`` refines; it needs a search index that takes a
    minute to compile)."""
    import numpy as np

    placed = np.empty((len(rows), 2), dtype=np.float32)
    step = block_rows(len(sample))
    for start in range(0, len(rows), step):
        block = rows[start : start + step]
        found = scores(matrix[block], sample, "euclidean")  # minus the distances
        near = np.argpartition(found, len(sample) - k, axis=1)[:, len(sample) - k :]
        distance = -np.take_along_axis(found, near, axis=1)
        # Memberships as UMAP weighs them: 1 for the nearest, fading with the distance
        # beyond it on the scale of the neighbourhood's spread.
        spread = distance - distance.min(axis=1, keepdims=True)
        scale = np.maximum(spread.mean(axis=1, keepdims=True), 1e-6)
        weights = np.exp(-spread / scale)
        weights /= weights.sum(axis=1, keepdims=True)
        placed[start : start + len(block)] = np.einsum("bk,bkd->bd", weights, layout[near])
    return placed

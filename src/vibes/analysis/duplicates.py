"""Near-duplicates: every pair of items whose similarity reaches a threshold.

The similarity is the collection's own search score (cosine, dot product, or
``1 / (1 + euclidean distance)``), rounded to 6 decimal places before it is compared, so
that identical vectors score exactly 1.0 in a cosine collection despite float32 rounding.
Pairs are found by blocked matrix products: a block of rows against the rows after it
(each pair is looked at once), in float32, keeps the entries that come near the
threshold; those are scored again exactly (float64), so the answer does not depend on the
block size or the BLAS. Memory stays about ``block x n`` floats, never ``n x n``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import VibesError

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = [
    "DuplicateGroup",
    "Pair",
    "duplicate_groups",
    "duplicate_pairs",
    "find_duplicates",
    "group_pairs",
]

#: Floats of one block's similarity matrix (64 MiB of float32), when no block is given.
BLOCK_FLOATS = 16 * 1024 * 1024
#: Decimal places a score is rounded to before it meets the threshold.
PLACES = 6


@dataclass
class Pair:
    """Two items (``id`` < ``other_id``) and their similarity."""

    id: str
    other_id: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DuplicateGroup:
    """Items joined by near-duplicate pairs (a connected group: two members may be
    joined only through others), with the best and worst score of those pairs."""

    ids: list[str]
    max_score: float
    min_score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "size": len(self.ids),
            "max_score": self.max_score,
            "min_score": self.min_score,
        }


def default_block(count: int) -> int:
    """Rows per block: a block's similarities stay within :data:`BLOCK_FLOATS`."""
    return max(1, min(count, BLOCK_FLOATS // max(count, 1)))


def duplicate_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    distance: str = "cosine",
    block: int | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pairs ``(i, j)`` with ``i < j`` whose score reaches ``threshold``, and the
    scores, best first (equal scores by ``i``, then ``j``). ``vectors`` are compared as
    they are: give unit rows for cosine. ``limit`` keeps only the best ``limit`` pairs
    (found as the blocks go, so memory stays bounded however many pairs pass)."""
    import numpy as np

    if distance not in ("cosine", "dot", "euclidean"):
        raise VibesError(f"Unknown distance {distance!r}")
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    count = len(matrix)
    step = block or default_block(count)
    if step < 1:
        raise VibesError(f"The block size must be at least 1, not {block}")
    norms = np.einsum("ij,ij->i", matrix, matrix)
    # float32 products are off by a few units in the last place of the largest norms
    # (and a distance from them loses more, by cancellation): the blocks only pick
    # candidates, with this much room, and each candidate is scored again exactly.
    slack = 1e-4 * max(float(norms.max(initial=0.0)), 1.0)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    kept = 0
    floor = float(threshold)
    for start in range(0, count, step):
        stop = min(start + step, count)
        # This block against itself and every row after it: each pair once.
        products = matrix[start:stop] @ matrix[start:].T
        if distance == "euclidean":
            if floor > 0:
                # score >= floor  <=>  squared distance <= (1 / floor - 1) ** 2
                products *= -2.0
                products += norms[start:stop, None]
                products += norms[None, start:]
                candidates = products <= (1.0 / floor - 1.0) ** 2 + slack
            else:
                candidates = np.ones(products.shape, dtype=bool)
        else:
            candidates = products >= floor - slack
        # flatnonzero and divmod: ~15 times faster than a 2-D nonzero on a wide block.
        rows, columns = np.divmod(np.flatnonzero(candidates), candidates.shape[1])
        del products, candidates
        ahead = columns > rows  # the diagonal block's lower half and the item itself
        rows, columns = rows[ahead] + start, columns[ahead] + start
        values = _exact_scores(matrix, rows, columns, distance)
        passed = values >= floor
        found_s.append(values[passed])
        found_i.append(rows[passed])
        found_j.append(columns[passed])
        kept += int(passed.sum())
        if limit is not None and kept > 2 * limit:
            merged = _best(
                np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s), limit
            )
            found_i, found_j, found_s = [merged[0]], [merged[1]], [merged[2]]
            kept = len(merged[0])
            if kept == limit:
                # Nothing scoring below the limit-th best can make the list any more.
                floor = max(floor, float(merged[2][-1]))
    if not found_i:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64)
    return _best(np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s), limit)


def _exact_scores(
    matrix: np.ndarray, rows: np.ndarray, columns: np.ndarray, distance: str
) -> np.ndarray:
    """The scores of the pairs (rows[k], columns[k]) in float64, rounded to
    :data:`PLACES`; a few thousand pairs at a time, so memory stays bounded."""
    import numpy as np

    scores = np.empty(len(rows), dtype=np.float64)
    step = 8192
    for first in range(0, len(rows), step):
        left = matrix[rows[first : first + step]].astype(np.float64)
        right = matrix[columns[first : first + step]].astype(np.float64)
        if distance == "euclidean":
            part = 1.0 / (1.0 + np.linalg.norm(left - right, axis=1))
        else:
            part = np.einsum("ij,ij->i", left, right)
        scores[first : first + step] = part
    return np.round(scores, PLACES)


def _best(
    rows: np.ndarray, columns: np.ndarray, scores: np.ndarray, limit: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs sorted best first (then by rows), the best ``limit`` of them."""
    import numpy as np

    order = np.lexsort((columns, rows, -scores))
    if limit is not None:
        order = order[:limit]
    return rows[order].astype(np.int64), columns[order].astype(np.int64), scores[order]


def find_duplicates(
    collection: Collection,
    threshold: float = 0.95,
    *,
    documents: bool = False,
    block: int | None = None,
    limit: int | None = None,
) -> list[Pair]:
    """Every pair of items (``documents``: chunked documents as wholes) scoring at least
    ``threshold``, best first, each pair once with ``id < other_id``. ``limit`` keeps
    the best ``limit`` pairs; ``block`` rows are compared at a time."""
    from .points import load_points

    if limit is not None and limit < 1:
        raise VibesError(f"The number of pairs must be at least 1, not {limit}")
    points = load_points(collection, documents=documents)
    rows, columns, scores = duplicate_pairs(
        points.vectors, threshold, distance=collection.distance, block=block, limit=limit
    )
    pairs = []
    for i, j, score in zip(rows.tolist(), columns.tolist(), scores.tolist()):
        first, second = sorted((points.ids[i], points.ids[j]))
        pairs.append(Pair(first, second, score))
    # Ids are ordered as the store sorts them; sort again by Python's order of ids.
    pairs.sort(key=lambda pair: (-pair.score, pair.id, pair.other_id))
    return pairs


def group_pairs(pairs: list[Pair]) -> list[DuplicateGroup]:
    """Connected groups of the items in ``pairs`` (union-find), largest first."""
    parent: dict[str, str] = {}

    def root(item: str) -> str:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]  # path halving keeps the trees flat
            item = parent[item]
        return item

    for pair in pairs:
        a, b = root(pair.id), root(pair.other_id)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = {}
    for item in parent:
        members.setdefault(root(item), []).append(item)
    scores: dict[str, list[float]] = {}
    for pair in pairs:
        scores.setdefault(root(pair.id), []).append(pair.score)
    groups = [
        DuplicateGroup(sorted(ids), max(scores[key]), min(scores[key]))
        for key, ids in members.items()
    ]
    groups.sort(key=lambda group: (-len(group.ids), -group.max_score, group.ids[0]))
    return groups


def duplicate_groups(
    collection: Collection,
    threshold: float = 0.95,
    *,
    documents: bool = False,
    block: int | None = None,
) -> list[DuplicateGroup]:
    """Groups of near-duplicates: items joined by pairs scoring at least ``threshold``
    (directly or through other members), largest group first."""
    return group_pairs(find_duplicates(collection, threshold, documents=documents, block=block))

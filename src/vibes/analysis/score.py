"""Scores along an axis between two meanings ("abstract" to "concrete").

Each end of the axis is the mean of its terms' vectors (see :mod:`.terms`; texts,
``file:`` and ``id:`` terms), scaled to length 1 in a cosine collection. An item's score
is the position of its vector projected onto the line from the low end ``A`` to the high
end ``B``::

    score(x) = (x - A) . (B - A) / |B - A|^2

so 0 is level with ``A``, 1 level with ``B``, 0.5 half way; items beyond an end score
below 0 or above 1. In a cosine collection (unit ``x``, ``A``, ``B``) this is exactly
``0.5 + (cos(x, B) - cos(x, A)) / (2 (1 - cos(A, B)))``: the difference of the item's
similarities to the two ends, scaled so that the ends themselves score 0 and 1. The
projection and the cosine difference therefore rank items the same way; the projection's
scale is the one that reads as "how far along from A to B".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import VibesError

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = ["Axis", "AxisScore", "axis", "score_axis"]


@dataclass
class AxisScore:
    """An item's (or document's) position on the axis: 0 at the low end, 1 at the high."""

    id: str
    score: float
    content: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Axis:
    """The two ends of an axis as vectors, and how to place a vector on it."""

    low: np.ndarray
    high: np.ndarray

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """The score of each row of ``vectors`` (float64)."""
        import numpy as np

        direction = self.high.astype(np.float64) - self.low.astype(np.float64)
        length = float(direction @ direction)
        return (np.asarray(vectors, dtype=np.float64) - self.low) @ direction / length


def axis(collection: Collection, low: Sequence[str], high: Sequence[str]) -> Axis:
    """The axis from the mean of the ``low`` terms to the mean of the ``high`` terms."""
    import numpy as np

    from .points import unit_rows
    from .terms import term_vectors

    if not low or not high:
        raise VibesError("An axis needs at least one term at each end (low and high)")
    vectors = term_vectors(collection, [*low, *high])
    ends = np.stack([vectors[: len(low)].mean(axis=0), vectors[len(low) :].mean(axis=0)])
    if collection.distance == "cosine":
        if not np.all(np.linalg.norm(ends, axis=1) > 1e-6):
            raise VibesError("An end of the axis averages to nothing: its terms cancel out")
        ends = unit_rows(ends)
    gap = float(np.linalg.norm(ends[1].astype(np.float64) - ends[0]))
    scale = max(float(np.linalg.norm(ends[0])), float(np.linalg.norm(ends[1])), 1e-12)
    if gap <= 1e-6 * scale:
        raise VibesError("The two ends of the axis are the same point: give different terms")
    return Axis(ends[0], ends[1])


def score_axis(
    collection: Collection,
    low: Sequence[str],
    high: Sequence[str],
    *,
    documents: bool = False,
    content: bool = True,
    sort: bool = True,
    reverse: bool = False,
    n: int | None = None,
) -> list[AxisScore]:
    """Every item's score on the axis from ``low`` to ``high`` (see the module's
    docstring), highest first (``reverse``: lowest first; ``sort=False``: by id).

    ``documents`` scores each chunked document as a whole (the mean of its chunks); ``n``
    keeps the first ``n``; ``content`` adds each one's stored text."""
    import numpy as np

    from .points import load_points, load_texts

    if n is not None and n < 1:
        raise VibesError(f"The number of results must be at least 1, not {n}")
    line = axis(collection, low, high)
    points = load_points(collection, documents=documents)
    if not len(points):
        return []
    scores = line.place(points.vectors)
    order = np.arange(len(points))
    if sort:
        # Stable: equal scores keep id order.
        order = np.argsort(scores if reverse else -scores, kind="stable")
    if n is not None:
        order = order[:n]
    chosen = [points.ids[i] for i in order]
    texts = load_texts(collection, chosen, documents=documents) if content else {}
    return [AxisScore(points.ids[i], float(scores[i]), texts.get(points.ids[i])) for i in order]

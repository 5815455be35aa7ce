"""Fusion: one ranking from the rankings of several retrievers (legs) for one query."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import VibesError
from .retrievers import Ranking

#: The constant of reciprocal rank fusion (Cormack et al., 2009): damps the weight of the
#: very first ranks so that one retriever's top hit does not decide alone.
RRF_K = 60
FUSIONS = ("rrf", "weighted")

#: Each item's (rank from 1, score) in each leg that found it.
LegDetails = dict[str, dict[str, tuple[int, float]]]


def check_fusion(method: str, weight: float) -> None:
    """A one-line error for an unknown fusion method or a weight outside 0..1."""
    if method not in FUSIONS:
        raise VibesError(f"Unknown fusion {method!r}: use {' or '.join(FUSIONS)}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise VibesError(f"The vector weight must be a number from 0 to 1, not {weight!r}")


def fuse(
    legs: Mapping[str, Ranking],
    n: int,
    *,
    method: str = "rrf",
    k: int = RRF_K,
    weights: Mapping[str, float] | None = None,
) -> tuple[Ranking, LegDetails]:
    """The ``n`` best (id, score) of one query's rankings, best first, with each item's
    rank and score in every leg that found it.

    One ranking is returned as it is (cut to ``n``), its scores untouched. Several are
    merged by ``method``:

    - ``rrf`` (reciprocal rank fusion): an item scores the sum over the legs that hold it
      of ``weight / (k + rank)``; scores of different scales never meet, only ranks.
    - ``weighted``: each leg's scores are scaled to 0..1 within its own list (the best
      1, the worst it returned 0) and summed with the legs' weights; an item a leg did
      not return gets 0 from it.

    ``weights`` default to 1 for every leg. Ties keep the order of first appearance.
    """
    details: LegDetails = {}
    for name, ranking in legs.items():
        for rank, (item_id, score) in enumerate(ranking, 1):
            details.setdefault(item_id, {})[name] = (rank, score)
    if not legs:
        return [], details
    if len(legs) == 1:
        (ranking,) = legs.values()
        return list(ranking[:n]), details
    weights = weights or {}
    fused: dict[str, float] = {}
    for name, ranking in legs.items():
        weight = weights.get(name, 1.0)
        if method == "rrf":
            for rank, (item_id, _score) in enumerate(ranking, 1):
                fused[item_id] = fused.get(item_id, 0.0) + weight / (k + rank)
        else:
            scores = [score for _, score in ranking]
            low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
            span = high - low
            for item_id, score in ranking:
                scaled = (score - low) / span if span > 0 else 1.0
                fused[item_id] = fused.get(item_id, 0.0) + weight * scaled
            for item_id in details:  # absent from this leg: nothing from it
                fused.setdefault(item_id, 0.0)
    ordered = sorted(fused.items(), key=lambda pair: -pair[1])
    return ordered[:n], details

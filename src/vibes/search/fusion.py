"""Fusion: one ranking from the rankings of several retrievers."""

from __future__ import annotations

from collections.abc import Sequence

from .retrievers import Ranking

#: The constant of reciprocal rank fusion (Cormack et al., 2009): damps the weight of the
#: very first ranks so that one retriever's top hit does not decide alone.
RRF_K = 60


def fuse(legs: Sequence[Ranking], n: int, *, k: int = RRF_K) -> Ranking:
    """The ``n`` best (id, score) of several rankings of one query, best first.

    One ranking is returned as it is (cut to ``n``), its scores untouched. Several are
    merged by reciprocal rank fusion: an item scores the sum of 1 / (k + rank) over the
    rankings that hold it (rank from 1), so items that several retrievers agree on rise;
    ties keep the order of first appearance.
    """
    if not legs:
        return []
    if len(legs) == 1:
        return list(legs[0][:n])
    fused: dict[str, float] = {}
    for ranking in legs:
        for rank, (item_id, _score) in enumerate(ranking, 1):
            fused[item_id] = fused.get(item_id, 0.0) + 1.0 / (k + rank)
    ordered = sorted(fused.items(), key=lambda pair: -pair[1])
    return ordered[:n]

"""Names for clusters without an LLM: each cluster's most distinctive words, by
class-based TF-IDF (c-TF-IDF, as BERTopic names its topics).

All of a cluster's texts count as one document. A word's weight in cluster ``c`` is

    tf(word, c) * log(1 + A / f(word))

where ``tf`` is the word's share of the cluster's words, ``f`` how often it occurs across
every cluster, and ``A`` the average number of words in a cluster: a word that is frequent in
one cluster and rare in the others ranks first. English stop words, numbers and one-letter
words are left out; a plural is dropped when its singular already made the name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["NAME_WORDS", "cluster_names", "distinctive_words", "tokens"]

#: How many words make a cluster's name.
NAME_WORDS = 4

# A word: a letter followed by letters, digits, and inner apostrophes, dots, pluses or
# hyphens ("c++", "node.js", "x11", "don't"); lower-cased before matching.
_WORD = re.compile(r"[^\W\d_](?:[\w'+.-]*[\w+])?")


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    # scikit-learn's English list (imported here, not at start-up), plus contractions'
    # pieces, abbreviations and web words.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    extra = {"ll", "ve", "re", "don't", "it's", "i'm", "e.g", "i.e", "etc", "http", "https", "www"}
    return frozenset(ENGLISH_STOP_WORDS) | extra


def tokens(text: str) -> list[str]:
    """The words of ``text`` that can name a cluster: lower-cased, two letters or more,
    English stop words left out."""
    stop = _stop_words()
    return [word for word in _WORD.findall(text.lower()) if len(word) > 1 and word not in stop]


def _count(texts: Iterable[str]) -> Counter[str]:
    """How often each word of :func:`tokens` occurs in ``texts``: one pass of the pattern
    over all of them joined, stop words dropped from the counts rather than from every
    occurrence (tens of thousands of texts in a fraction of a second)."""
    counts = Counter(_WORD.findall("\n".join(texts).lower()))
    stop = _stop_words()
    for word in [w for w in counts if len(w) < 2 or w in stop]:
        del counts[word]
    return counts


def distinctive_words(
    texts_by_cluster: Sequence[Iterable[str]], words: int = NAME_WORDS
) -> list[list[str]]:
    """For each cluster (its texts), its ``words`` most distinctive words by c-TF-IDF, best
    first; fewer when the cluster has fewer words, none when it has none."""
    counts = [_count(texts) for texts in texts_by_cluster]
    totals = [sum(count.values()) for count in counts]
    if not counts or not any(totals):
        return [[] for _ in counts]
    across: Counter[str] = Counter()
    for count in counts:
        across.update(count)
    average = sum(totals) / len(counts)
    return [_best(count, total, across, average, words) for count, total in zip(counts, totals)]


def _best(
    count: Counter[str], total: int, across: Counter[str], average: float, words: int
) -> list[str]:
    """The ``words`` best words of one cluster, by c-TF-IDF weight (highest first; equal
    weights by the word, so that a name never depends on the order texts were read in)."""
    import numpy as np

    if not total:
        return []
    vocabulary = list(count)
    frequency = np.fromiter(count.values(), dtype=np.float64, count=len(vocabulary))
    spread = np.fromiter((across[w] for w in vocabulary), dtype=np.float64, count=len(vocabulary))
    weight = frequency / total * np.log1p(average / spread)
    keep = words * 4
    while True:
        # Only the best few are sorted: every word weighing at least the keep-th best (all
        # of a tie), rather than the whole vocabulary.
        if keep < len(vocabulary):
            floor = np.partition(weight, len(weight) - keep)[len(weight) - keep]
            candidates = np.flatnonzero(weight >= floor)
        else:
            candidates = np.arange(len(vocabulary))
        ranked = sorted(candidates.tolist(), key=lambda i: (-weight[i], vocabulary[i]))
        chosen = _without_plurals([vocabulary[i] for i in ranked], words)
        if len(chosen) == words or len(candidates) == len(vocabulary):
            return chosen
        keep *= 4


def _without_plurals(ranked: list[str], words: int) -> list[str]:
    """The first ``words`` of ``ranked``, skipping a word whose singular (or plural) is
    already chosen: "library, libraries" says one thing twice."""
    chosen: list[str] = []
    stems: set[str] = set()
    for word in ranked:
        stem = _singular(word)
        if stem in stems:
            continue
        chosen.append(word)
        stems.add(stem)
        if len(chosen) == words:
            break
    return chosen


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def cluster_names(
    texts_by_cluster: Sequence[Iterable[str]],
    fallback: Sequence[str] | None = None,
    words: int = NAME_WORDS,
) -> list[str]:
    """A name for each cluster: its distinctive words joined by ", " (``"python, library,
    module"``); ``fallback[i]`` (else ``"cluster i"``) for a cluster without a word."""
    names = []
    for i, found in enumerate(distinctive_words(texts_by_cluster, words)):
        if found:
            names.append(", ".join(found))
        else:
            names.append(fallback[i] if fallback is not None else f"cluster {i}")
    return names

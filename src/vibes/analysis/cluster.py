"""Clusters of a collection's items (or chunked documents), each with a name and, on
request, an LLM's summary; the shape llm-cluster prints, reproducibly.

- ``kmeans`` (the default) makes exactly ``n`` clusters: scikit-learn's ``KMeans`` (three
  starts) up to :data:`MINIBATCH_ABOVE` points, ``MiniBatchKMeans`` (three starts) above.
  Measured on the Debian descriptions: at 20,000 points mini-batches took a fifth of full
  k-means' time for a fit 1% looser; at 63,000, 0.5 s against 1.7 s. Run on one thread
  (see :func:`_kmeans`). The same ``seed`` gives the same clusters, numbered the same way.
- ``hdbscan`` finds how many clusters there are itself (scikit-learn's ``HDBSCAN``) and
  leaves the points that belong to none unclustered (noise: cluster ``-1``). It compares
  all pairs of points, so its time grows with the square of the size; above
  :data:`HDBSCAN_EXACT_UP_TO` points it works on the vectors' projection onto
  :data:`HDBSCAN_DIMENSIONS` principal components (``ClusterResult.reduced_to`` says so).

Cosine collections are clustered on unit vectors, so k-means' Euclidean distance ranks
like the cosine. Clusters are numbered from 0 by size, largest first (ties: the cluster
holding the smallest id first); a cluster's items run from the one nearest its centre
outwards. Every cluster is named by its most distinctive words (:mod:`.naming`); items
without stored text lend their ids' words instead, and a cluster without any word is
called ``"cluster N"``.
"""

from __future__ import annotations

import json
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import VibesError
from .points import document_of, load_points, load_texts

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection
    from ..llms import ChatModel

__all__ = [
    "ALGORITHMS",
    "DEFAULT_SAMPLE_TOKENS",
    "DEFAULT_SUMMARY_PROMPT",
    "HDBSCAN_DIMENSIONS",
    "HDBSCAN_EXACT_UP_TO",
    "HDBSCAN_MIN_SAMPLES",
    "MINIBATCH_ABOVE",
    "Cluster",
    "ClusterItem",
    "ClusterResult",
    "ClusterWarning",
    "cluster_collection",
    "default_min_cluster_size",
    "store_clustering",
    "summarise_cluster",
    "summary_sample",
]

ALGORITHMS = ("kmeans", "hdbscan")
#: Above this many points k-means runs in mini-batches (``MiniBatchKMeans``).
MINIBATCH_ABOVE = 10_000
#: Up to this many points hdbscan compares the vectors themselves, all pairs at once;
#: above, their projection onto :data:`HDBSCAN_DIMENSIONS` principal components.
HDBSCAN_EXACT_UP_TO = 4_000
HDBSCAN_DIMENSIONS = 32
#: How many neighbours make a point part of a dense region (HDBSCAN's ``min_samples``).
#: Its default, the minimum cluster size, left most of the Debian descriptions as noise
#: and found one or two clusters; 5 found a dozen clusters (perl, rust, fonts...) in 10,000.
HDBSCAN_MIN_SAMPLES = 5
#: The instructions (system message) sent with each cluster's sample.
DEFAULT_SUMMARY_PROMPT = (
    "The user message lists texts from one cluster of related items, one per line. "
    "Reply with a short, specific title for the cluster: a few words naming what the "
    "texts have in common. Reply with the title alone."
)
#: Tokens of a cluster's texts sent for its summary when the LLM's context length is
#: unknown: with the instructions and the answer's room, it fits the smallest contexts in
#: use (4,096 tokens).
DEFAULT_SAMPLE_TOKENS = 3000
#: Room kept for the summary (at most a quarter of the context), the tokens a message
#: costs beyond its text, and a margin for what counting cannot see.
SUMMARY_TOKENS = 256
MESSAGE_OVERHEAD = 4
MARGIN_TOKENS = 32
#: The fewest tokens of texts worth sending for a summary.
MIN_SAMPLE_TOKENS = 64


class ClusterWarning(UserWarning):
    """Something about a clustering worth knowing: fewer distinct clusters than asked."""


@dataclass(slots=True)
class ClusterItem:
    """An item of a cluster: its id and its stored text (cut to ``truncate`` characters;
    None when no text was stored)."""

    id: str
    content: str | None


@dataclass
class Cluster:
    """A cluster: its number, its items (nearest its centre first), its name (its most
    distinctive words), the LLM's summary when one was asked for, and its size."""

    id: int
    items: list[ClusterItem]
    name: str
    summary: str | None
    size: int
    #: The distinctive words the name is made of, best first.
    words: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """llm-cluster's shape (``id`` as a string, ``items``, ``summary``), plus ``name``
        and ``size``."""
        return {
            "id": str(self.id),
            "name": self.name,
            "size": self.size,
            "summary": self.summary,
            "items": [{"id": item.id, "content": item.content} for item in self.items],
        }


@dataclass
class ClusterResult:
    """A clustering: the clusters, each point's cluster (-1: left unclustered by hdbscan),
    how many points were left unclustered, and how it was made."""

    clusters: list[Cluster]
    assignments: dict[str, int]
    unclustered: int
    algorithm: str
    seed: int
    n: int | None = None
    documents: bool = False
    min_cluster_size: int | None = None
    #: hdbscan on many points: the dimensions the vectors were reduced to first (PCA).
    reduced_to: int | None = None

    def to_json(self) -> list[dict[str, Any]]:
        """The clusters as llm-cluster prints them (plus ``name`` and ``size``)."""
        return [cluster.to_json() for cluster in self.clusters]

    def settings(self) -> dict[str, Any]:
        """How the clustering was made, as stored with ``store``."""
        return {
            "algorithm": self.algorithm,
            "n": self.n,
            "seed": self.seed,
            "documents": self.documents,
            "min_cluster_size": self.min_cluster_size,
            "reduced_to": self.reduced_to,
        }


def cluster_collection(
    collection: Collection,
    n: int | None = None,
    *,
    algorithm: str = "kmeans",
    seed: int = 0,
    documents: bool = False,
    min_cluster_size: int | None = None,
    names: bool = True,
    summary: bool = False,
    llm: str | ChatModel | None = None,
    prompt: str | None = None,
    truncate: int | None = 100,
    store: bool = False,
    on_summary: Callable[[Cluster], None] | None = None,
) -> ClusterResult:
    """Cluster ``collection``'s items into ``n`` clusters (k-means), or as many as
    ``algorithm="hdbscan"`` finds (no ``n``; ``min_cluster_size`` points at least, by
    default :func:`default_min_cluster_size`).

    - ``seed``: k-means' random state; the same seed gives the same clusters.
    - ``documents``: a chunked document is one point (the mean of its chunks).
    - ``names``: name each cluster by its distinctive words (else ``"cluster N"``).
    - ``summary``: ask ``llm`` (a name, a :class:`~vibes.llms.ChatModel`, or None for the
      default LLM) to summarise each cluster from a sample of its texts that fits the
      model's context (:func:`summarise_cluster`), with ``prompt`` as the instructions
      (default :data:`DEFAULT_SUMMARY_PROMPT`); ``on_summary`` is called after each.
    - ``truncate``: cut each item's content to this many characters (None or 0: whole).
    - ``store``: save each item's cluster, and the clusters' names and summaries, in the
      database (replacing any earlier clustering; see :func:`store_clustering`).
    """
    _check_arguments(n, algorithm, seed, min_cluster_size, truncate)
    if (llm is not None or prompt is not None) and not summary:
        raise VibesError("An LLM or a prompt applies to summaries only: ask for a summary")
    if not collection.exists:
        raise VibesError(f"Collection {collection.name!r} does not exist")
    model = _summary_model(llm) if summary else None
    if documents:
        points = load_points(collection, documents=True)
        ids, vectors, texts = points.ids, points.vectors, None
        del points
    else:
        ids, vectors, texts = _items_with_texts(collection)
    count = len(ids)
    if count == 0:
        raise VibesError(f"Collection {collection.name!r} is empty: there is nothing to cluster")
    if algorithm == "kmeans":
        assert n is not None
        if n > count:
            what = "documents and items" if documents else "items"
            raise VibesError(f"Cannot make {n} clusters of {count} {what}: ask for {count} at most")
        labels, centres = _kmeans(vectors, n, seed)
        reduced = None
    else:
        if min_cluster_size is None:
            min_cluster_size = default_min_cluster_size(count)
        labels, centres, reduced = _hdbscan(vectors, min_cluster_size)
    grouped = [[ids[i] for i in group] for group in _members(ids, vectors, labels, centres)]
    # The vectors are most of the memory, and done with: let them go before the texts come.
    del vectors, labels, centres
    if texts is None:
        texts = load_texts(collection, [i for group in grouped for i in group], documents=True)
    clusters = [
        Cluster(number, _items(group, texts, truncate), f"cluster {number}", None, len(group))
        for number, group in enumerate(grouped)
    ]
    if names:
        _name(clusters, grouped, texts)
    assignments = dict.fromkeys(ids, -1)
    for cluster, group in zip(clusters, grouped):
        assignments.update(dict.fromkeys(group, cluster.id))
    unclustered = count - sum(len(group) for group in grouped)
    result = ClusterResult(
        clusters,
        assignments,
        unclustered,
        algorithm,
        seed,
        n if algorithm == "kmeans" else None,
        documents,
        min_cluster_size if algorithm == "hdbscan" else None,
        reduced,
    )
    if n is not None and len(clusters) < n:
        warnings.warn(
            f"Only {len(clusters)} clusters instead of {n}: the collection holds too few "
            "distinct vectors",
            ClusterWarning,
            stacklevel=2,
        )
    if model is not None:
        for cluster, group in zip(clusters, grouped):
            cluster.summary = summarise_cluster(
                model, [text for i in group if (text := texts[i])], prompt, cluster=cluster.id
            )
            if on_summary is not None:
                on_summary(cluster)
    if store:
        store_clustering(collection, result)
    return result


def default_min_cluster_size(count: int) -> int:
    """hdbscan's smallest cluster for ``count`` points: 5, growing with the square root of
    the size (50 at 10,000 points, 122 at 60,000) so that a large collection gives a
    readable number of clusters rather than thousands of tiny ones."""
    return max(5, round(count**0.5 / 2))


def _check_arguments(
    n: int | None,
    algorithm: str,
    seed: int,
    min_cluster_size: int | None,
    truncate: int | None,
) -> None:
    def whole(value: Any) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    if algorithm not in ALGORITHMS:
        raise VibesError(f"Unknown clustering algorithm {algorithm!r}: use kmeans or hdbscan")
    if algorithm == "kmeans":
        if n is None:
            raise VibesError("k-means needs the number of clusters to make")
        if not whole(n) or n < 1:
            raise VibesError(f"The number of clusters must be 1 or more, not {n!r}")
        if min_cluster_size is not None:
            raise VibesError("A minimum cluster size applies to hdbscan only")
    else:
        if n is not None:
            raise VibesError("hdbscan finds the number of clusters itself: give no number")
        if min_cluster_size is not None and (not whole(min_cluster_size) or min_cluster_size < 2):
            raise VibesError(
                f"The minimum cluster size must be 2 or more, not {min_cluster_size!r}"
            )
    if not whole(seed) or not 0 <= seed < 2**32:
        raise VibesError(f"The seed must be a whole number from 0 to 2**32 - 1, not {seed!r}")
    if truncate is not None and (not whole(truncate) or truncate < 0):
        raise VibesError(f"Truncate must be 0 (no truncation) or more, not {truncate!r}")


def _summary_model(llm: str | ChatModel | None) -> ChatModel:
    if llm is not None and not isinstance(llm, str):
        return llm
    from ..llms import get_llm

    return get_llm(llm)


# -- clustering ----------------------------------------------------------------------------


def _items_with_texts(
    collection: Collection,
) -> tuple[list[str], np.ndarray, dict[str, str | None]]:
    """Every item's id, vector (unit length for a cosine collection, as
    :func:`~.points.load_points` gives them) and stored text, by id, in one pass of pages:
    memory stays near the size of the matrix itself, and no second pass reads the texts."""
    import numpy as np

    from ..errors import DimensionMismatchError

    dimensions = collection.dimensions or 0
    normalise = collection.distance == "cosine"
    matrix = np.empty((collection.count(), dimensions), dtype=np.float32)
    ids: list[str] = []
    texts: dict[str, str | None] = {}
    for page, block in collection.database.store.iter_items(collection.id, with_vectors=True):
        assert block is not None
        if len(page) and block.shape[1] != dimensions:
            raise DimensionMismatchError(
                f"Stored item {page[0].id!r} has a {block.shape[1]}-dimensional vector; "
                f"the collection holds {dimensions}-dimensional ones"
            )
        if normalise:
            # Squared norms without a squared copy of the block.
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            norms[norms == 0] = 1.0
            block = block / norms[:, None]
        if len(ids) + len(page) > len(matrix):  # items added while reading
            matrix = np.concatenate([matrix[: len(ids)], block])
        else:
            matrix[len(ids) : len(ids) + len(page)] = block
        page_ids = [item.id for item in page]
        ids.extend(page_ids)
        texts.update(zip(page_ids, [item.content for item in page]))
    return ids, matrix[: len(ids)], texts


def _kmeans(vectors: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centres from k-means, in mini-batches above :data:`MINIBATCH_ABOVE`."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    model: Any
    if len(vectors) > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=n, random_state=seed, n_init=3)
    else:
        # copy_x=False: centre the data in place (and restore it) rather than copy it.
        model = KMeans(n_clusters=n, random_state=seed, n_init=3, copy_x=False)
    # One thread: k-means' steps here are small, and OpenMP threads that wait for one
    # another by spinning made them ten times slower on a machine whose cores were busy.
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):
        # Fewer distinct points than clusters: said once, plainly, by the caller.
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(vectors)
    return labels, model.cluster_centers_.astype(vectors.dtype, copy=False)


def _hdbscan(
    vectors: np.ndarray, min_cluster_size: int
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Labels (-1: noise), each cluster's centroid, and the dimensions the points were
    reduced to first (None: not reduced), from HDBSCAN.

    scikit-learn's HDBSCAN compares every pair of points. Up to :data:`HDBSCAN_EXACT_UP_TO`
    points it does so on the vectors themselves, all pairs at once (fast, memory growing
    with the square of the size); above, on the vectors projected onto their
    :data:`HDBSCAN_DIMENSIONS` principal components, where its tree search works (on
    hundreds of dimensions it took longer than the all-pairs way, 40 s for 5,000 points)."""
    import numpy as np

    if len(vectors) < max(min_cluster_size, 2):
        # Too few points for one cluster: all noise (HDBSCAN itself refuses so few).
        return np.full(len(vectors), -1, dtype=np.int64), vectors[:0], None
    from sklearn.cluster import HDBSCAN

    reduced: int | None = None
    points = vectors
    if len(vectors) <= HDBSCAN_EXACT_UP_TO:
        algorithm = "brute"
    else:
        algorithm = "auto"
        if vectors.shape[1] > HDBSCAN_DIMENSIONS:
            points, reduced = _principal_components(vectors, HDBSCAN_DIMENSIONS), HDBSCAN_DIMENSIONS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's notes on defaults
        labels = HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=min(HDBSCAN_MIN_SAMPLES, min_cluster_size),
            algorithm=algorithm,
            copy=True,
        ).fit_predict(points)
    del points
    return labels, _centroids(vectors, labels), reduced


def _principal_components(vectors: np.ndarray, dimensions: int) -> np.ndarray:
    """``vectors`` projected onto their first ``dimensions`` principal components
    (from the covariance's eigenvectors: deterministic, and no centred copy of the data)."""
    import numpy as np

    mean = vectors.mean(axis=0, dtype=np.float64)
    covariance = (vectors.T @ vectors).astype(np.float64) / len(vectors) - np.outer(mean, mean)
    _, eigenvectors = np.linalg.eigh(covariance)
    basis = eigenvectors[:, ::-1][:, :dimensions].astype(vectors.dtype)
    return vectors @ basis - (mean @ basis).astype(vectors.dtype)


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean vector of each cluster (labels 0..k-1; -1 left out)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    found = int(labels.max()) + 1 if len(labels) else 0
    keep = np.flatnonzero(labels >= 0)
    if not found:
        return vectors[:0]
    membership = csr_matrix(
        (np.ones(len(keep), dtype=vectors.dtype), (labels[keep], keep)),
        shape=(found, len(vectors)),
    )
    sums = np.asarray(membership @ vectors)
    return (sums / np.bincount(labels[keep], minlength=found)[:, None]).astype(vectors.dtype)


def _members(
    ids: Sequence[str], vectors: np.ndarray, labels: np.ndarray, centres: np.ndarray
) -> list[list[int]]:
    """Each non-empty cluster's rows, nearest its centre first (ties by id), the clusters
    largest first (ties: the one holding the smallest id first)."""
    import numpy as np

    distances = np.full(len(ids), np.inf, dtype=np.float64)
    block = 8192
    # Squared distance to the own cluster's centre, a block of rows at a time: no
    # (points x clusters) matrix for hdbscan's hundreds of clusters.
    centre_norms = np.einsum("ij,ij->i", centres, centres)
    for start in range(0, len(ids), block):
        rows = vectors[start : start + block]
        own = labels[start : start + block]
        keep = own >= 0
        if not keep.any():
            continue
        picked = rows[keep]
        near = np.einsum("ij,ij->i", picked, picked) - 2 * np.einsum(
            "ij,ij->i", picked, centres[own[keep]]
        )
        distances[start : start + block][keep] = near + centre_norms[own[keep]]
    id_rank = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    rank_of = np.empty(len(ids), dtype=np.int64)
    rank_of[id_rank] = np.arange(len(ids))
    # Sort by cluster, then distance, then id: one lexsort over every point.
    order = np.lexsort((rank_of, distances, labels))
    sorted_labels = labels[order]
    groups: list[list[int]] = []
    starts = np.flatnonzero(np.diff(sorted_labels, prepend=sorted_labels[0] - 1))
    for begin, end in zip(starts, [*starts[1:], len(order)]):
        if sorted_labels[begin] >= 0:
            groups.append(order[begin:end].tolist())
    groups.sort(key=lambda group: (-len(group), int(rank_of[group].min())))
    return groups


# -- names and text --------------------------------------------------------------------------


def _items(ids: list[str], texts: dict[str, str | None], truncate: int | None) -> list[ClusterItem]:
    if not truncate:
        return [ClusterItem(i, texts[i]) for i in ids]
    return [ClusterItem(i, None if (text := texts[i]) is None else text[:truncate]) for i in ids]


def _name(clusters: list[Cluster], ids: list[list[str]], texts: dict[str, str | None]) -> None:
    """Name each cluster by the distinctive words of its items' texts (an item without
    text: the words of its id)."""
    from .naming import distinctive_words

    found = distinctive_words([[texts[i] or _id_words(i) for i in group] for group in ids])
    for cluster, words in zip(clusters, found):
        cluster.words = words
        if words:
            cluster.name = ", ".join(words)


def _id_words(item_id: str) -> str:
    # "docs/backup-restore.md" -> "docs backup restore md"
    return "".join(c if c.isalnum() else " " for c in item_id)


# -- summaries -------------------------------------------------------------------------------


def summarise_cluster(
    model: ChatModel,
    texts: Sequence[str],
    prompt: str | None = None,
    *,
    budget: int | None = None,
    cluster: int | None = None,
) -> str | None:
    """The LLM's summary of a cluster from ``texts`` (nearest its centre first): one call,
    with ``prompt`` as the instructions and a sample of the texts that fits ``budget``
    tokens (default: what the model's context leaves after the instructions, the answer's
    room and a margin; :data:`DEFAULT_SAMPLE_TOKENS` when its context is unknown). None
    when there is no text to send."""
    instructions = prompt if prompt is not None else DEFAULT_SUMMARY_PROMPT
    if not instructions.strip():
        raise VibesError("The summary prompt is empty")
    if not any(text.strip() for text in texts):
        return None
    fixed = model.count_tokens(instructions) + 2 * MESSAGE_OVERHEAD
    answer = SUMMARY_TOKENS
    if budget is None:
        if model.context_length:
            answer = min(SUMMARY_TOKENS, model.context_length // 4)
            budget = model.context_length - answer - fixed - MARGIN_TOKENS
        else:
            budget = DEFAULT_SAMPLE_TOKENS
    if budget < MIN_SAMPLE_TOKENS:
        raise VibesError(
            f"LLM {model.model_id}'s context of {model.context_length} tokens leaves no room "
            f"for a cluster's texts after the prompt ({fixed} tokens) and the summary "
            f"({answer} tokens)"
        )
    sample = summary_sample(texts, budget, model.count_tokens)
    messages = [
        {"role": "system", "content": instructions},
        {"role": "user", "content": sample},
    ]
    try:
        text = model.complete(messages, max_tokens=answer)
    except VibesError as error:
        where = f"cluster {cluster}" if cluster is not None else "a cluster"
        raise VibesError(f"Summarising {where} with {model.model_id} failed: {error}") from None
    return _clean_summary(text)


def _clean_summary(text: str) -> str:
    text = text.strip()
    # A title wrapped in quotes is still the title.
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        text = text[1:-1].strip()
    return text


def summary_sample(texts: Sequence[str], budget: int, count: Callable[[str], int]) -> str:
    """The lines sent for a summary: ``texts`` (nearest the centre first) as ``- TEXT``
    lines within ``budget`` tokens (``count``). About half the budget goes to the texts
    nearest the centre, what the cluster is about; the rest to texts spread evenly over the
    others, its range (then, while room is left, to the others in order). A long text is cut
    so that one text never takes more than an eighth of the budget."""
    texts = [text for text in texts if text.strip()]
    cap = max(budget // 8, 16)
    lines: list[str] = []
    used = 0
    core = 0
    # The core: nearest first, up to half the budget (at least one text).
    while core < len(texts):
        line = _line(texts[core], cap, count)
        cost = count(line) + 1
        if used + cost > budget or (lines and used + cost > budget // 2):
            break
        lines.append(line)
        used += cost
        core += 1
    rest = texts[core:]
    if rest:
        average = max(used / max(len(lines), 1), 1.0)
        wanted = min(max(int((budget - used) // average), 1), len(rest))
        step = len(rest) / wanted
        spread = sorted({int(i * step) for i in range(wanted)})
        chosen = set(spread)
        candidates = spread + [i for i in range(len(rest)) if i not in chosen]
        misses = 0
        for index in candidates:
            if budget - used < 4 or misses >= 32:
                break
            line = _line(rest[index], cap, count)
            cost = count(line) + 1
            if used + cost <= budget:
                lines.append(line)
                used += cost
            else:
                misses += 1
    sample = "\n".join(lines)
    # Counts of the parts need not add up to the count of the whole (real tokenizers).
    while lines and count(sample) > budget:
        lines.pop()
        sample = "\n".join(lines)
    return sample


def _line(text: str, cap: int, count: Callable[[str], int]) -> str:
    line = "- " + " ".join(text.split())
    if count(line) <= cap:
        return line
    from ..llms import CHARS_PER_TOKEN

    piece = line[: cap * CHARS_PER_TOKEN]
    while piece and count(piece + " ...") > cap:
        piece = piece[: int(len(piece) * 0.8)]
    return piece.rstrip() + " ..."


# -- storing ---------------------------------------------------------------------------------


def store_clustering(collection: Collection, result: ClusterResult) -> None:
    """Save ``result`` in the database, replacing the collection's earlier clustering: the
    clusters (number, name, summary, size), how they were made, and each item's cluster
    (-1: unclustered). With ``documents``, each chunk gets its document's cluster."""
    from ..store.base import ClusterRecord

    assignments = result.assignments
    if result.documents:
        owners = document_of(collection)
        if owners:
            documents = set(owners.values())
            assignments = {i: c for i, c in assignments.items() if i not in documents}
            assignments.update(
                (chunk, result.assignments[document])
                for chunk, document in owners.items()
                if document in result.assignments
            )
    records = [
        ClusterRecord(cluster.id, cluster.name, cluster.summary, cluster.size)
        for cluster in result.clusters
    ]
    store = collection.database.store
    with store.transaction() as tx:
        store.save_clustering(
            tx, collection.id, json.dumps(result.settings()), records, assignments
        )

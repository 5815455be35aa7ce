"""Labels for unlabelled items from a few labelled ones: the nearest centroid.

Each label's centroid is the mean of its labelled items' vectors (scaled to length 1
first in a cosine collection, as every analysis compares them). An item gets the label
whose centroid is nearest by euclidean distance; for unit vectors that distance is
``sqrt(1 + |c|^2 - 2 cos(x, c) |c|)``, so a label whose items agree closely (a long
centroid) reaches further than a scattered one. This is exactly scikit-learn's
``NearestCentroid`` fitted on the same (unit) vectors, the Rocchio classifier.

Each prediction carries:

- ``confidence``: ``1 - d1 / d2``, where ``d1`` and ``d2`` are the distances to the
  nearest and the second nearest centroid: 0 when the item sits as near the runner-up
  (a coin toss between them), 1 when it sits on its label's centroid. It needs no
  temperature and does not shrink as labels are added, unlike a softmax;
- ``scores`` (on request): each label's ``1 / (1 + distance)``, the score vibes gives
  euclidean similarity everywhere; higher is nearer.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, VibesError

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = [
    "Centroids",
    "Classification",
    "Evaluation",
    "LabelScores",
    "Prediction",
    "classify",
    "evaluate_classifier",
    "read_labels",
]


@dataclass
class Prediction:
    """The label an item gets, how sure that is (0..1), and each label's score."""

    id: str
    label: str
    confidence: float
    scores: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "label": self.label, "confidence": self.confidence}
        if self.scores is not None:
            data["scores"] = self.scores
        return data


@dataclass
class Classification:
    """Predictions for every unlabelled item, and what the labels could not use."""

    predictions: list[Prediction]
    labels: list[str]
    #: Labelled ids that are not in the collection (left out).
    unknown: list[str] = field(default_factory=list)
    #: How many labelled items the centroids were made from.
    labelled: int = 0


@dataclass
class LabelScores:
    """How one label fared on the held-out items; None where undefined (nothing
    predicted, or nothing held out, with that label)."""

    precision: float | None
    recall: float | None
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "support": self.support}


@dataclass
class Evaluation:
    """Held-out accuracy: the classifier fitted on ``train`` labelled items and asked
    about ``test`` others whose labels it did not see."""

    accuracy: float
    train: int
    test: int
    labels: dict[str, LabelScores]
    unknown: list[str] = field(default_factory=list)
    #: The label each held-out item got (compare with its own to find the mistakes).
    predictions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "train": self.train,
            "test": self.test,
            "labels": {name: scores.to_dict() for name, scores in self.labels.items()},
        }


@dataclass
class Centroids:
    """A fitted nearest-centroid classifier: label names (sorted) and their centroids."""

    labels: list[str]
    centroids: np.ndarray  # (k, d) float64

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Iterable[str]) -> Centroids:
        """The mean of each label's rows of ``vectors``."""
        import numpy as np

        names = list(labels)
        if len(names) != len(vectors):
            raise VibesError("Give one label per vector")
        classes = sorted(set(names))
        if len(classes) < 2:
            raise VibesError(
                f"Classifying needs at least two labels, not {len(classes)}"
                + (f" ({classes[0]!r})" if classes else "")
            )
        position = {name: i for i, name in enumerate(classes)}
        rows = np.fromiter((position[name] for name in names), dtype=np.int64, count=len(names))
        # Each label's rows as one slice of a sorted order: a sum per slice is ~60 times
        # faster than np.add.at, and the same whatever the number of labels.
        order = np.argsort(rows, kind="stable")
        bounds = np.searchsorted(rows[order], np.arange(len(classes) + 1))
        centroids = np.empty((len(classes), vectors.shape[1]), dtype=np.float64)
        for k in range(len(classes)):
            members = vectors[order[bounds[k] : bounds[k + 1]]]
            centroids[k] = members.sum(axis=0, dtype=np.float64) / len(members)
        return cls(classes, centroids)

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Euclidean distance from each row of ``vectors`` to each centroid, (n, k)."""
        import numpy as np

        x = np.asarray(vectors, dtype=np.float64)
        squared = (
            np.einsum("ij,ij->i", x, x)[:, None]
            - 2.0 * (x @ self.centroids.T)
            + np.einsum("ij,ij->i", self.centroids, self.centroids)[None, :]
        )
        return np.sqrt(np.maximum(squared, 0.0))

    def predict(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each row's label, confidence and distances to every centroid."""
        import numpy as np

        distances = self.distances(vectors)
        best = np.argmin(distances, axis=1)  # the first of equals, as scikit-learn
        ordered = np.partition(distances, 1, axis=1)  # the two smallest first
        nearest, runner_up = ordered[:, 0], ordered[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            confidence = np.where(runner_up > 0, 1.0 - nearest / runner_up, 0.0)
        return [self.labels[i] for i in best], confidence, distances


def read_labels(path: str | Path, text: str | None = None) -> dict[str, str]:
    """``{id: label}`` from a CSV (header ``id,label``), TSV (``.tsv``) or JSON lines
    (``.jsonl``, ``.ndjson``, ``.json``: objects with ``id`` and ``label``) file. ``text``
    gives the content (stdin, say) in place of reading ``path``; its format then comes
    from ``path``'s suffix too."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as error:
            raise InputError(f"Cannot read {name!r}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise InputError(f"{name} is not UTF-8 text") from None
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json", ".nl"):
        rows = _json_rows(name, text)
    else:
        rows = _delimited_rows(name, text, "\t" if suffix == ".tsv" else ",")
    labels: dict[str, str] = {}
    for where, item_id, label in rows:
        if not item_id:
            raise InputError(f"{where}: empty id")
        if not label:
            raise InputError(f"{where}: item {item_id!r} has an empty label")
        if labels.get(item_id, label) != label:
            raise InputError(
                f"{where}: item {item_id!r} has two labels ({labels[item_id]!r} and {label!r})"
            )
        labels[item_id] = label
    if not labels:
        raise InputError(f"{name} holds no labels")
    return labels


def _delimited_rows(name: str, text: str, delimiter: str) -> list[tuple[str, str, str]]:
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError(f"{name} is empty")
    columns = [column.strip().lower() for column in header]
    if "id" not in columns or "label" not in columns:
        raise InputError(
            f"{name} needs a header row naming columns 'id' and 'label' (found: "
            f"{', '.join(repr(c) for c in header) or 'nothing'})"
        )
    id_at, label_at = columns.index("id"), columns.index("label")
    rows = []
    for line, record in enumerate(reader, start=2):
        if not record or all(not value.strip() for value in record):
            continue
        if len(record) <= max(id_at, label_at):
            raise InputError(f"{name} line {line}: too few columns")
        rows.append((f"{name} line {line}", record[id_at].strip(), record[label_at].strip()))
    return rows


def _json_rows(name: str, text: str) -> list[tuple[str, str, str]]:
    from ..ingest.rows import read_nl_lines

    rows = []
    for where, record in read_nl_lines(enumerate(text.splitlines(), start=1), name):
        if "id" not in record or "label" not in record:
            raise InputError(f"{where}: expected an object with 'id' and 'label'")
        rows.append((where, _text(record["id"]), _text(record["label"])))
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _labelled_points(
    collection: Collection, labels: Mapping[str, str], documents: bool
) -> tuple[Any, list[int], list[str], list[str]]:
    """The collection's points, the rows of the labelled ones with their labels, and the
    labelled ids the collection lacks. A label left with no items is an error."""
    from .points import load_points

    points = load_points(collection, documents=documents)
    row_of = {item_id: i for i, item_id in enumerate(points.ids)}
    rows, names, unknown = [], [], []
    for item_id in sorted(labels):
        if item_id in row_of:
            rows.append(row_of[item_id])
            names.append(labels[item_id])
        else:
            unknown.append(item_id)
    if not rows:
        what = "documents" if documents else "items"
        raise InputError(
            f"None of the {len(labels)} labelled ids are {what} of collection {collection.name!r}"
        )
    missing = sorted(set(labels.values()) - set(names))
    if missing:
        raise InputError(
            f"Label {missing[0]!r} has no items in collection {collection.name!r} "
            f"(all its ids are unknown)"
            + (f"; so have {len(missing) - 1} more labels" if len(missing) > 1 else "")
        )
    return points, rows, names, unknown


def classify(
    collection: Collection,
    labels: Mapping[str, str],
    *,
    documents: bool = False,
    scores: bool = False,
) -> Classification:
    """A label for every item of ``collection`` that ``labels`` (``{id: label}``) does
    not label: the label of the nearest centroid (see the module's docstring), with a
    confidence and, with ``scores``, every label's score. Ids in ``labels`` that the
    collection lacks are left out and listed in ``unknown``."""
    import numpy as np

    points, rows, names, unknown = _labelled_points(collection, labels, documents)
    fitted = Centroids.fit(points.vectors[rows], names)
    labelled = set(rows)
    others = np.array([i for i in range(len(points)) if i not in labelled], dtype=np.int64)
    predictions: list[Prediction] = []
    if len(others):
        predicted, confidence, distances = fitted.predict(points.vectors[others])
        for row, label, sure, far in zip(others, predicted, confidence, distances):
            predictions.append(
                Prediction(
                    points.ids[row],
                    label,
                    round(float(sure), 6),
                    {name: round(1.0 / (1.0 + float(d)), 6) for name, d in zip(fitted.labels, far)}
                    if scores
                    else None,
                )
            )
    return Classification(predictions, fitted.labels, unknown, len(rows))


def split_labelled(
    names: list[str], test_size: float, seed: int | None
) -> tuple[list[int], list[int]]:
    """Positions of ``names`` to fit on and to hold out: about ``test_size`` of each
    label's items held out (rounded), always leaving it at least one to fit on."""
    import numpy as np

    if not 0 < test_size < 1:
        raise VibesError(f"The test size is a share between 0 and 1, not {test_size}")
    generator = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for position, name in enumerate(names):
        by_label.setdefault(name, []).append(position)
    train: list[int] = []
    test: list[int] = []
    for name in sorted(by_label):
        positions = by_label[name]
        order = [positions[i] for i in generator.permutation(len(positions))]
        held = min(math.floor(len(positions) * test_size + 0.5), len(positions) - 1)
        test.extend(order[:held])
        train.extend(order[held:])
    return sorted(train), sorted(test)


def evaluate_classifier(
    collection: Collection,
    labels: Mapping[str, str],
    *,
    test_size: float = 0.2,
    seed: int | None = 0,
    documents: bool = False,
) -> Evaluation:
    """Hold out ``test_size`` of each label's items (chosen at random by ``seed``), fit
    on the rest, and measure how often the held-out items get their own label back:
    accuracy, and each label's precision and recall."""
    points, rows, names, unknown = _labelled_points(collection, labels, documents)
    train, test = split_labelled(names, test_size, seed)
    if not test:
        raise VibesError(
            f"Too few labelled items to hold any out ({len(rows)}, test size {test_size})"
        )
    fitted = Centroids.fit(points.vectors[[rows[i] for i in train]], [names[i] for i in train])
    predicted, _, _ = fitted.predict(points.vectors[[rows[i] for i in test]])
    truth = [names[i] for i in test]
    correct = sum(p == t for p, t in zip(predicted, truth))
    per_label: dict[str, LabelScores] = {}
    for name in sorted(set(names)):
        hits = sum(p == t == name for p, t in zip(predicted, truth))
        claimed = sum(p == name for p in predicted)
        support = sum(t == name for t in truth)
        per_label[name] = LabelScores(
            round(hits / claimed, 6) if claimed else None,
            round(hits / support, 6) if support else None,
            support,
        )
    return Evaluation(
        round(correct / len(test), 6),
        len(train),
        len(test),
        per_label,
        unknown,
        {points.ids[rows[i]]: label for i, label in zip(test, predicted)},
    )

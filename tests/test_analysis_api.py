"""The analysis methods of a Collection: each reaches its module, with its options."""

from __future__ import annotations

import numpy as np
import pytest

import vibes
from vibes.index.manager import IndexWarning

TOPICS = {
    # (The test model hashes words into 16 signed buckets: these words share none.)
    "cats": ["cats kittens purr", "cats kittens nap", "cats kittens whiskers"],
    "rust": ["rust compiler traits", "rust compiler ownership", "rust traits ownership"],
}


@pytest.fixture
def collection(db_path, test_plugin):
    target = vibes.Database(db_path).collection("c", model="hash")
    target.embed_multi(
        [(f"{topic}-{i}", text) for topic, texts in TOPICS.items() for i, text in enumerate(texts)],
        store=True,
    )
    return target


def test_cluster_and_plot(collection, tmp_path):
    result = collection.cluster(2, seed=1, store=True)
    groups = sorted(sorted(item.id.split("-")[0] for item in c.items) for c in result.clusters)
    assert groups == [["cats"] * 3, ["rust"] * 3]
    assert collection.database.store.cluster_assignments(collection.id) == result.assignments
    plotted = collection.plot(tmp_path / "map.html", color="cluster")
    assert plotted.points == 6 and plotted.clusters == "stored"
    assert (tmp_path / "map.html").read_text().count("cats-") >= 3


def test_score_classify_duplicates_and_expressions(collection):
    scores = {s.id: s.score for s in collection.score_axis(["cats"], ["rust"])}
    assert min(scores[f"rust-{i}"] for i in range(3)) > max(scores[f"cats-{i}"] for i in range(3))
    labels = {"cats-0": "animal", "rust-0": "code"}
    predicted = {p.id: p.label for p in collection.classify(labels).predictions}
    assert predicted == {"cats-1": "animal", "cats-2": "animal", "rust-1": "code", "rust-2": "code"}
    evaluation = collection.evaluate_classifier(
        {f"{t}-{i}": t for t in TOPICS for i in range(3)}, test_size=0.34, seed=0
    )
    assert evaluation.accuracy == 1.0
    collection.embed_multi([("copy", "cats kittens purr")])
    pairs = collection.duplicates(0.99)
    assert ("cats-0", "copy", 1.0) in [(p.id, p.other_id, p.score) for p in pairs]
    assert all(p.score >= 0.99 for p in pairs) and len(collection.duplicates(0.99, limit=1)) == 1
    found = collection.similar_expression("id:cats-0 - 'cats kittens purr' + rust", 3)
    assert found[0].id.startswith("rust") and "cats-0" not in [m.id for m in found]


def test_related(collection):
    status = collection.build_related(2)
    assert status.items == 6 and status.n == 2
    assert [other.split("-")[0] for other, _ in collection.related("cats-1")] == ["cats"] * 2
    assert len(collection.related("cats-1", 1)) == 1
    rng = np.random.default_rng(0)
    collection.embed_multi([{"id": "new", "vector": rng.normal(size=16).tolist()}])
    assert "new" in dict(collection.database.store.related(collection.id, ["new"]))


def test_stale_related_items_warn_in_python(collection, monkeypatch):
    from vibes.analysis import related

    collection.build_related(2)
    monkeypatch.setattr(related, "INLINE_CHANGES", 0)
    collection.embed_multi([("late", "cats everywhere")])
    with pytest.warns(IndexWarning, match="miss 1 changed items"):
        collection.related("cats-1")

"""`vibes score` (positions on an axis between two meanings) and `vibes classify`
(nearest-centroid labels), with the terms both read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.neighbors import NearestCentroid

import vibes
from vibes.analysis.classify import (
    Centroids,
    classify,
    evaluate_classifier,
    read_labels,
    split_labelled,
)
from vibes.analysis.score import axis, score_axis
from vibes.analysis.terms import term_vector, term_vectors

FRUIT = [("f1", "apple banana fruit"), ("f2", "banana fruit salad"), ("f3", "fruit apple pie")]
CARS = [("c1", "car engine wheel"), ("c2", "engine wheel motor"), ("c3", "car motor road")]


def unit(matrix):
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


@pytest.fixture
def texts(db_path, test_plugin):
    """Six short texts about fruit or cars, embedded by the hashed bag-of-words model."""
    collection = vibes.Database(db_path).collection("t", model="hash")
    collection.embed_multi(FRUIT + CARS, store=True)
    return collection


def stored(collection, vectors, **kwargs):
    collection.embed_multi(
        [{"id": item_id, "vector": np.asarray(v).tolist()} for item_id, v in vectors.items()],
        **kwargs,
    )
    return collection


@pytest.fixture
def random_collection(db_path, test_plugin):
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(60, 16)).astype(np.float32)
    collection = vibes.Database(db_path).collection("r", model="hash")
    stored(collection, {f"v{i:02d}": row for i, row in enumerate(matrix)})
    return collection, matrix


# -- terms ---------------------------------------------------------------------------------


def test_terms_are_ids_files_and_texts_of_unit_length(texts, tmp_path):
    file = tmp_path / "query.txt"
    file.write_text("car engine wheel")
    by_id, by_file, by_text, forced = term_vectors(
        texts, ["id:c1", f"file:{file}", "car engine wheel", "text:car engine wheel"]
    )
    assert np.allclose(by_id, unit(texts.vector("c1")), atol=1e-6)
    # The same text, embedded, lands where the stored item is; all four have length 1.
    for vector in (by_file, by_text, forced):
        assert np.allclose(vector, by_id, atol=1e-6)
    assert np.allclose(np.linalg.norm([by_id, by_file, by_text]), np.sqrt(3), atol=1e-5)


def test_terms_of_a_dot_collection_keep_their_length(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("d", model="hash", distance="dot")
    stored(collection, {"a": [3.0] + [0.0] * 15})
    assert term_vector(collection, "id:a")[0] == pytest.approx(3.0)


def test_a_document_term_is_the_mean_of_its_chunks(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(
        [("doc", "apple fruit pie car engine wheel")], chunk="words", chunk_options={"n": 3}
    )
    chunks = [unit(collection.vector("doc#1")), unit(collection.vector("doc#2"))]
    assert np.allclose(term_vector(collection, "id:doc"), unit(np.mean(chunks, axis=0)), atol=1e-6)


def test_bad_terms_are_one_line_errors(texts, tmp_path):
    with pytest.raises(vibes.ItemNotFoundError, match="No item 'nope'"):
        term_vector(texts, "id:nope")
    with pytest.raises(vibes.InputError, match="Cannot read"):
        term_vector(texts, f"file:{tmp_path / 'missing.txt'}")
    for empty in ("", "   ", "id:", "text: "):
        with pytest.raises(vibes.InputError):
            term_vector(texts, empty)


# -- score ---------------------------------------------------------------------------------


def test_score_is_the_projection_between_the_two_ends(random_collection):
    collection, matrix = random_collection
    low_terms, high_terms = ["id:v00", "id:v01"], ["id:v02"]
    got = {s.id: s.score for s in score_axis(collection, low_terms, high_terms)}
    a = unit(unit(matrix[[0, 1]]).mean(axis=0))
    b = unit(matrix[2])
    x = unit(matrix)
    want = (x - a) @ (b - a) / ((b - a) @ (b - a))
    assert np.allclose([got[f"v{i:02d}"] for i in range(60)], want, atol=1e-5)
    # The same as the difference of the cosines to the two ends, scaled.
    cosine = 0.5 + (x @ b - x @ a) / (2 * (1 - a @ b))
    assert np.allclose(want, cosine, atol=1e-9)
    # The high end's own item is at 1.
    assert got["v02"] == pytest.approx(1.0, abs=1e-5)


def test_score_in_a_dot_collection_is_not_normalised(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("d", model="hash", distance="dot")
    e = np.eye(16)
    stored(collection, {"low": e[0], "high": 3 * e[1], "mid": 1.5 * e[1] + 0.5 * e[0]})
    got = {s.id: s.score for s in score_axis(collection, ["id:low"], ["id:high"])}
    # B - A = (-1, 3): (x - A).(B - A) / 10 with x - A = (-0.5, 1.5) gives 0.5.
    assert got == pytest.approx({"low": 0.0, "high": 1.0, "mid": 0.5})


def test_texts_about_the_high_end_score_higher(texts):
    scored = score_axis(texts, ["apple banana fruit salad pie"], ["car engine wheel motor road"])
    assert [s.score for s in scored] == sorted((s.score for s in scored), reverse=True)
    assert {s.id for s in scored[:3]} == {"c1", "c2", "c3"}
    assert min(s.score for s in scored[:3]) > max(s.score for s in scored[3:])
    assert {s.id: s.content for s in scored}["f1"] == "apple banana fruit"


def test_several_terms_at_an_end_are_averaged(texts):
    line = axis(texts, ["apple banana", "fruit salad"], ["car"])
    vectors = term_vectors(texts, ["apple banana", "fruit salad", "car"])
    assert np.allclose(line.low, unit(vectors[:2].mean(axis=0)), atol=1e-6)
    assert np.allclose(line.high, vectors[2], atol=1e-6)


def test_an_axis_needs_two_different_ends(texts):
    with pytest.raises(vibes.VibesError, match="same point"):
        axis(texts, ["car engine"], ["engine car"])
    with pytest.raises(vibes.VibesError, match="at least one term"):
        axis(texts, [], ["car"])


def test_score_documents_as_wholes(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(FRUIT + CARS, store=True)
    collection.embed_multi(
        [("mixed", "apple banana fruit car engine wheel")],
        chunk="words",
        chunk_options={"n": 3},
        store=True,
    )
    plain = {s.id for s in score_axis(collection, ["id:f1"], ["id:c1"])}
    assert {"mixed#1", "mixed#2"} <= plain and "mixed" not in plain
    wholes = {s.id: s for s in score_axis(collection, ["id:f1"], ["id:c1"], documents=True)}
    assert "mixed" in wholes and "mixed#1" not in wholes
    assert wholes["mixed"].content == "apple banana fruit\ncar engine wheel"
    # Half fruit, half cars: in between the two ends.
    assert 0 < wholes["mixed"].score < 1


def test_cli_score_orders_limits_and_formats(invoke, texts, db_path):
    base = ["score", "t", "-d", db_path, "--low", "apple banana fruit", "--high", "car engine"]
    base += ["--high", "wheel motor road"]
    result = invoke(base)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [set(row) for row in rows] == [{"id", "score", "content"}] * 6
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    api = score_axis(texts, ["apple banana fruit"], ["car engine", "wheel motor road"])
    assert [row["id"] for row in rows] == [s.id for s in api]

    top = invoke([*base, "-n", "2", "--no-content"])
    assert top.exit_code == 0, top.output
    assert [json.loads(line) for line in top.output.splitlines()] == [
        {"id": r["id"], "score": r["score"]} for r in rows[:2]
    ]
    reverse = invoke([*base, "--reverse", "-n", "1"])
    assert json.loads(reverse.output)["id"] == rows[-1]["id"]
    unsorted = invoke([*base, "--no-sort"])
    assert [json.loads(line)["id"] for line in unsorted.output.splitlines()] == sorted(
        row["id"] for row in rows
    )
    table = invoke([*base, "--table"])
    assert table.output.splitlines()[0].split() == ["id", "score", "content"]
    assert len(table.output.splitlines()) == 8


def test_cli_score_axis_option_and_errors(invoke, texts, db_path):
    both = invoke(["score", "t", "-d", db_path, "--axis", "id:f1", "id:c1"])
    assert both.exit_code == 0, both.output
    assert json.loads(both.output.splitlines()[0])["score"] == pytest.approx(1.0, abs=1e-5)

    one_end = invoke(["score", "t", "-d", db_path, "--low", "fruit"])
    assert one_end.exit_code == 2 and "both ends" in one_end.output
    for args, problem in (
        (["--axis", "id:nope", "car"], "No item 'nope'"),
        (["--axis", "car", "car"], "same point"),
        (["--axis", "car", "file:/no/such/file"], "Cannot read"),
    ):
        result = invoke(["score", "t", "-d", db_path, *args])
        assert result.exit_code == 1 and problem in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    missing = invoke(["score", "nope", "-d", db_path, "--axis", "a", "b"])
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
    zero = invoke(["score", "t", "-d", db_path, "--axis", "a", "b", "-n", "0"])
    assert zero.exit_code == 2


# -- classify ------------------------------------------------------------------------------


def clustered(count, seed, centres=4, spread=0.8):
    rng = np.random.default_rng(seed)
    middles = rng.normal(size=(centres, 16))
    which = rng.integers(0, centres, count)
    return (middles[which] + spread * rng.normal(size=(count, 16))).astype(np.float32), which


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "dot"])
def test_classify_agrees_with_scikit_learn_nearest_centroid(db_path, test_plugin, distance):
    matrix, which = clustered(400, seed=5, spread=1.2)
    collection = vibes.Database(db_path).collection("c", model="hash", distance=distance)
    ids = [f"i{i:03d}" for i in range(len(matrix))]
    stored(collection, dict(zip(ids, matrix)))
    rng = np.random.default_rng(9)
    labelled = sorted(rng.choice(len(ids), 80, replace=False))
    # Labels that mostly follow the clusters, with some noise, so there are mistakes.
    names = [f"L{which[i]}" if rng.random() > 0.2 else f"L{rng.integers(0, 4)}" for i in labelled]
    labels = {ids[i]: name for i, name in zip(labelled, names)}

    result = classify(collection, labels, scores=True)
    points = unit(matrix) if distance == "cosine" else matrix.astype(np.float64)
    reference = NearestCentroid().fit(points[labelled], names)
    others = [i for i in range(len(ids)) if i not in set(labelled)]
    assert [p.id for p in result.predictions] == [ids[i] for i in others]
    expected = reference.predict(points[others])
    assert [p.label for p in result.predictions] == list(expected)
    assert len(set(expected)) > 1
    # Confidence and scores from the reference's own centroids.
    distances = np.linalg.norm(points[others][:, None, :] - reference.centroids_[None], axis=2)
    ordered = np.sort(distances, axis=1)
    assert np.allclose(
        [p.confidence for p in result.predictions], 1 - ordered[:, 0] / ordered[:, 1], atol=1e-5
    )
    first = result.predictions[0]
    assert first.scores == pytest.approx(
        {str(label): 1 / (1 + d) for label, d in zip(reference.classes_, distances[0])}, abs=1e-5
    )
    assert result.labels == sorted(set(names)) and result.labelled == 80


def test_centroids_are_the_means_of_their_rows():
    vectors = np.array([[0.0, 2.0], [0.0, 4.0], [6.0, 0.0]])
    fitted = Centroids.fit(vectors, ["b", "b", "a"])
    assert fitted.labels == ["a", "b"]
    assert np.allclose(fitted.centroids, [[6.0, 0.0], [0.0, 3.0]])
    labels, confidence, _ = fitted.predict(np.array([[0.0, 3.0], [3.0, 1.5]]))
    assert labels == ["b", "a"]  # the second is as near to both: the first label wins
    assert confidence == pytest.approx([1.0, 0.0])


def test_evaluate_on_a_constructed_case(db_path, test_plugin):
    """a* sit on A's point, b* on B's; c1 sits next to A and c2 far from both, so whichever
    of them is held out, it is nearer A's centroid than the other c's: always wrong."""
    collection = vibes.Database(db_path).collection("e", model="hash", distance="euclidean")
    e = 10 * np.eye(16)
    vectors = {f"a{i}": e[0] for i in range(4)} | {f"b{i}": e[1] for i in range(4)}
    vectors |= {"c1": e[0] + e[3] / 10, "c2": e[2] + e[0] / 2}
    stored(collection, vectors)
    labels = {item_id: item_id[0].upper() for item_id in vectors}
    for seed in range(5):
        result = evaluate_classifier(collection, labels, test_size=0.25, seed=seed)
        assert (result.train, result.test) == (7, 3)
        assert result.accuracy == pytest.approx(2 / 3, abs=1e-6)
        assert result.labels["A"].to_dict() == {"precision": 0.5, "recall": 1.0, "support": 1}
        assert result.labels["B"].to_dict() == {"precision": 1.0, "recall": 1.0, "support": 1}
        assert result.labels["C"].to_dict() == {"precision": None, "recall": 0.0, "support": 1}
        held_c = [item_id for item_id in result.predictions if item_id.startswith("c")]
        assert len(held_c) == 1 and result.predictions[held_c[0]] == "A"


def test_evaluate_matches_scikit_learn_on_the_same_split(random_collection):
    collection, matrix = random_collection
    names = [f"L{i % 3}" if i % 7 else "L0" for i in range(60)]
    labels = {f"v{i:02d}": name for i, name in enumerate(names)}
    result = evaluate_classifier(collection, labels, test_size=0.3, seed=11)
    train, test = split_labelled(names, 0.3, 11)
    points = unit(matrix)
    predicted = (
        NearestCentroid().fit(points[train], [names[i] for i in train]).predict(points[test])
    )
    truth = [names[i] for i in test]
    assert result.accuracy == pytest.approx(accuracy_score(truth, predicted), abs=1e-6)
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=["L0", "L1", "L2"], zero_division=0
    )
    for k, name in enumerate(["L0", "L1", "L2"]):
        assert (result.labels[name].precision or 0) == pytest.approx(precision[k], abs=1e-6)
        assert result.labels[name].recall == pytest.approx(recall[k], abs=1e-6)
        assert result.labels[name].support == support[k]
    assert (result.train, result.test) == (len(train), len(test))


def test_the_split_holds_out_a_share_of_each_label_and_keeps_one():
    names = ["a"] * 10 + ["b"] * 5 + ["c"]
    train, test = split_labelled(names, 0.2, 1)
    assert sorted(train + test) == list(range(16))
    held = [names[i] for i in test]
    assert (held.count("a"), held.count("b"), held.count("c")) == (2, 1, 0)
    assert split_labelled(names, 0.2, 1) == (train, test)
    assert split_labelled(names, 0.2, 2) != (train, test)
    # Nearly everything held out: each label still keeps one item to fit on.
    train, test = split_labelled(["a", "a", "b", "b"], 0.9, 0)
    assert sorted(["a", "a", "b", "b"][i] for i in train) == ["a", "b"]
    assert len(test) == 2


def test_read_labels_formats_and_mistakes(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text('id,label\nx,"one, two"\ny,b\n\n')
    assert read_labels(csv_file) == {"x": "one, two", "y": "b"}
    tsv_file = tmp_path / "labels.tsv"
    tsv_file.write_text("label\tid\nb\ty\n")
    assert read_labels(tsv_file) == {"y": "b"}
    jsonl_file = tmp_path / "labels.jsonl"
    jsonl_file.write_text('{"id": 1, "label": "a"}\n\n{"id": "z", "label": "b"}\n')
    assert read_labels(jsonl_file) == {"1": "a", "z": "b"}
    for name, text, problem in (
        ("h.csv", "item,tag\nx,a\n", "header row naming columns 'id' and 'label'"),
        ("e.csv", "id,label\nx,\n", "e.csv line 2: item 'x' has an empty label"),
        ("d.csv", "id,label\nx,a\nx,b\n", "line 3: item 'x' has two labels"),
        ("j.jsonl", '{"id": "x"}\n', "j.jsonl line 1: expected an object"),
        ("n.jsonl", "{nope\n", "invalid JSON"),
        ("none.csv", "id,label\n", "holds no labels"),
    ):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(vibes.InputError, match=problem):
            read_labels(path)


@pytest.fixture
def labelled_texts(texts, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nf1,fruit\nc1,cars\n")
    return texts, labels


def test_cli_classify_labels_the_other_items(invoke, labelled_texts, db_path):
    _, labels = labelled_texts
    result = invoke(["classify", "t", "--labels", labels, "-d", db_path])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["id"] for row in rows] == ["c2", "c3", "f2", "f3"]
    assert {row["id"]: row["label"] for row in rows} == {
        "c2": "cars",
        "c3": "cars",
        "f2": "fruit",
        "f3": "fruit",
    }
    assert all(set(row) == {"id", "label", "confidence"} for row in rows)
    assert all(0 <= row["confidence"] <= 1 for row in rows)

    with_scores = invoke(["classify", "t", "--labels", labels, "-d", db_path, "--scores"])
    first = json.loads(with_scores.output.splitlines()[0])
    assert set(first["scores"]) == {"cars", "fruit"}
    assert first["scores"]["cars"] > first["scores"]["fruit"]

    table = invoke(["classify", "t", "--labels", labels, "-d", db_path, "--table", "--scores"])
    assert table.output.splitlines()[0].split() == ["id", "label", "confidence", "cars", "fruit"]

    piped = invoke(["classify", "t", "--labels", "-", "-d", db_path], input=labels.read_text())
    assert piped.output == result.output


def test_cli_classify_evaluate(invoke, texts, db_path, tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"id": item_id, "label": "fruit" if item_id[0] == "f" else "cars"}) + "\n"
            for item_id, _ in FRUIT + CARS
        )
    )
    result = invoke(
        ["classify", "t", "--labels", labels, "-d", db_path, "--evaluate", "--test-size", "0.34"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["train"], report["test"]) == (4, 2)
    assert report["accuracy"] == 1.0
    assert report["labels"]["fruit"] == {"precision": 1.0, "recall": 1.0, "support": 1}
    table = invoke(["classify", "t", "--labels", labels, "-d", db_path, "--evaluate", "--table"])
    assert table.output.startswith("accuracy 1.0000 on 2 held-out items (fitted on 4)")
    bad = invoke(
        ["classify", "t", "--labels", labels, "-d", db_path, "--evaluate", "--test-size", "1"]
    )
    assert bad.exit_code == 2


def test_cli_classify_warns_of_unknown_ids_and_refuses_what_it_cannot_use(
    invoke, texts, db_path, tmp_path
):
    def labels(text):
        path = tmp_path / "labels.csv"
        path.write_text("id,label\n" + text)
        return ["classify", "t", "--labels", path, "-d", db_path]

    partly = invoke(labels("f1,fruit\nc1,cars\nghost1,cars\nghost2,fruit\n"))
    assert partly.exit_code == 0
    assert "Warning: 2 labelled ids are not in collection 't', left out ('ghost1', 'ghost2')" in (
        partly.output
    )
    assert len([line for line in partly.output.splitlines() if line.startswith("{")]) == 4
    for text, problem in (
        ("ghost1,a\nghost2,b\n", "None of the 2 labelled ids are items of collection 't'"),
        ("f1,fruit\nc1,cars\nghost,boats\n", "Label 'boats' has no items"),
        ("f1,fruit\nc1,fruit\n", "needs at least two labels, not 1 ('fruit')"),
    ):
        result = invoke(labels(text))
        assert result.exit_code == 1 and problem in result.output, result.output
        assert "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    missing = invoke(["classify", "t", "--labels", tmp_path / "nope.csv", "-d", db_path])
    assert missing.exit_code == 1 and "Cannot read" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_real_model_axis_and_arithmetic(tmp_path, minilm):
    """With all-MiniLM-L6-v2: king - man + woman finds queen, and hot things score above
    cold ones on an axis from 'cold' to 'hot'."""
    from vibes.analysis.arithmetic import expression_search

    collection = vibes.Database(tmp_path / "words.db").collection("w", model=minilm)
    words = ["king", "queen", "man", "woman", "prince", "boy", "girl", "car", "apple"]
    things = {"ice": "cold", "snow": "cold", "freezer": "cold", "glacier": "cold"}
    things |= {"fire": "hot", "lava": "hot", "sun": "hot", "oven": "hot"}
    collection.embed_multi([(w, w) for w in [*words, *things]], store=True)
    found = expression_search(collection, "id:king - id:man + id:woman", 3)
    assert found[0].id == "queen"
    assert not {"king", "man", "woman"} & {m.id for m in found}
    scores = {s.id: s.score for s in score_axis(collection, ["cold"], ["hot"])}
    hot = [scores[t] for t, kind in things.items() if kind == "hot"]
    cold = [scores[t] for t, kind in things.items() if kind == "cold"]
    assert min(hot) > max(cold)


def test_classify_documents_as_wholes(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(FRUIT + CARS)
    collection.embed_multi(
        [("recipe", "banana fruit salad apple fruit pie")], chunk="words", chunk_options={"n": 3}
    )
    labels = {"f1": "fruit", "c1": "cars"}
    wholes = {p.id: p.label for p in classify(collection, labels, documents=True).predictions}
    assert wholes["recipe"] == "fruit" and "recipe#1" not in wholes
    chunks = {p.id for p in classify(collection, labels).predictions}
    assert {"recipe#1", "recipe#2"} <= chunks and "recipe" not in chunks
    # A label may name a document.
    by_document = classify(collection, {"recipe": "fruit", "c1": "cars"}, documents=True)
    assert by_document.labelled == 2 and {p.id: p.label for p in by_document.predictions}["f2"] == (
        "fruit"
    )

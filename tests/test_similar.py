"""`vibes similar` and the Python search API: exact cosine search over one matrix."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import vibes


@pytest.fixture
def random_collection(db_path, test_plugin):
    """300 random 16-d vectors stored as given, and the numpy matrix they came from."""
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(300, 16)).astype(np.float32)
    collection = vibes.Database(db_path).collection("random", model="hash")
    collection.embed_multi(
        ({"id": f"v{i:03d}", "vector": row.tolist()} for i, row in enumerate(matrix)),
        batch_size=64,
    )
    return collection, matrix


def brute_force(matrix, query, n, allowed=None):
    normed = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = normed @ (query / np.linalg.norm(query))
    order = [i for i in np.argsort(-scores) if allowed is None or allowed(i)]
    return [(f"v{i:03d}", float(scores[i])) for i in order[:n]]


def test_similar_by_vector_matches_brute_force(random_collection):
    collection, matrix = random_collection
    rng = np.random.default_rng(1)
    for _ in range(5):
        query = rng.normal(size=16).astype(np.float32)
        got = [(m.id, m.score) for m in collection.similar_by_vector(query, n=10)]
        want = brute_force(matrix, query, 10)
        assert [g[0] for g in got] == [w[0] for w in want]
        assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-5)


def test_similar_by_id_leaves_the_item_out(random_collection):
    collection, matrix = random_collection
    results = collection.similar_by_id("v010", n=5)
    assert "v010" not in [r.id for r in results]
    want = brute_force(matrix, matrix[10], 6, allowed=lambda i: i != 10)[:5]
    assert [r.id for r in results] == [w[0] for w in want]


def test_n_larger_than_the_collection_returns_everything(random_collection):
    collection, _ = random_collection
    results = collection.similar_by_id("v000", n=1000)
    assert len(results) == 299
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_prefix_is_literal_not_a_like_pattern(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("p", model="hash")
    collection.embed_multi(
        [("a_1", "one"), ("ab1", "one two"), ("a%x", "two"), ("b_1", "three")], store=True
    )
    ids = {m.id for m in collection.similar("one", n=10, prefix="a_")}
    assert ids == {"a_1"}  # llm's LIKE would also match ab1
    assert {m.id for m in collection.similar("one", n=10, prefix="a%")} == {"a%x"}
    assert {m.id for m in collection.similar("one", n=10, prefix="zzz")} == set()


def test_cli_similar_json_lines_shape(invoke, db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(
        [("cat", "cats purr softly", {"kind": "pet"}), ("car", "cars need fuel", None)], store=True
    )
    result = invoke(["similar", "docs", "-c", "cats purr", "-d", db_path])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [set(line) for line in lines] == [{"id", "score", "content", "metadata"}] * 2
    assert lines[0]["id"] == "cat"
    assert lines[0]["metadata"] == {"kind": "pet"}
    assert lines[0]["content"] == "cats purr softly"
    assert lines[0]["score"] > lines[1]["score"]
    plain = invoke(["similar", "docs", "cat", "--plain", "-d", db_path])
    assert plain.output.startswith("car (")


def test_similar_with_the_real_model_ranks_by_meaning(invoke, db_path, minilm):
    db = vibes.Database(db_path)
    docs = db.collection("docs")
    docs.embed_multi(
        [
            ("backup", "How to back up a SQLite database file safely"),
            ("cats", "Cats are small furry animals that purr"),
            ("python", "Python is a popular programming language"),
            ("bread", "A recipe for sourdough bread with a crisp crust"),
        ],
        store=True,
    )
    assert docs.similar("kittens and other pets", n=1)[0].id == "cats"
    assert docs.similar("copying a database for safekeeping", n=1)[0].id == "backup"
    result = invoke(["similar", "docs", "-c", "baking at home", "-n", "1", "-d", db_path])
    assert json.loads(result.output)["id"] == "bread"


def test_cached_matrix_sees_writes_from_this_and_other_connections(db_path, test_plugin):
    db = vibes.Database(db_path)
    collection = db.collection("c", model="hash")
    collection.embed_multi([("a", "alpha words"), ("b", "beta words")])
    assert {m.id for m in collection.similar("alpha", n=10)} == {"a", "b"}
    collection.embed("c", "gamma words")  # our own write
    assert {m.id for m in collection.similar("alpha", n=10)} == {"a", "b", "c"}
    other = sqlite3.connect(db_path)  # a write behind vibes' back, as llm or SQL would do
    other.execute("delete from embeddings where id = 'a'")
    other.commit()
    assert {m.id for m in collection.similar("alpha", n=10)} == {"b", "c"}
    collection.delete_items(["b"])
    assert {m.id for m in collection.similar("alpha", n=10)} == {"c"}


def test_empty_collection_returns_nothing(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("empty", model="hash")
    assert collection.similar("anything") == []


@pytest.fixture
def pets(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(
        [
            ("cat", "cats purr softly\nand sleep", {"kind": "pet"}),
            ("car", "cars need fuel", None),
        ],
        store=True,
    )
    return db_path


def test_plain_is_what_llm_prints(invoke, pets):
    result = invoke(["similar", "docs", "-c", "cats purr", "-p", "-d", pets])
    found = vibes.Database(pets).collection("docs").similar("cats purr")
    # The id and the score as Python prints it, a blank line, the content and metadata
    # indented, a blank line: `llm similar --plain`.
    assert result.output == (
        f'cat ({found[0].score})\n\n  cats purr softly\n  and sleep\n  {{"kind": "pet"}}\n\n'
        f"car ({found[1].score})\n\n  cars need fuel\n\n"
    )


def test_table(invoke, pets):
    result = invoke(["similar", "docs", "-c", "cats purr", "--table", "-d", pets])
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "score", "content", "metadata"]
    # One line a result: the content's lines joined, the metadata as JSON.
    assert lines[2].startswith("cat ") and lines[2].endswith(
        'cats purr softly and sleep  {"kind": "pet"}'
    )
    assert lines[3].startswith("car ") and lines[3].endswith("cars need fuel")
    assert float(lines[2].split()[1]) > float(lines[3].split()[1])
    both = invoke(["similar", "docs", "-c", "x", "--table", "--plain", "-d", pets])
    assert both.exit_code == 2 and "Give --plain or --table, not both" in both.stderr


def test_plain_and_table_keep_chunks_and_their_context(invoke, db_path, test_plugin):
    text = "first line here\nsecond line about cats\nthird line here\nfourth line"
    vibes.Database(db_path).collection("notes", model="hash").embed_multi(
        [("doc.txt", text)], chunk="lines", store=True
    )
    args = ["similar", "notes", "-c", "about cats", "-n", "1", "-d", db_path]
    plain = invoke([*args, "--context", "1", "--plain"]).output
    header, blank, *body = plain.splitlines()
    assert header.startswith("doc.txt#2 (") and blank == ""
    assert body == [
        "  doc.txt#1, lines 1-1:",
        "    first line here",
        "  doc.txt#2, lines 2-2 (this match):",
        "    second line about cats",
        "  doc.txt#3, lines 3-3:",
        "    third line here",
        "",
    ]
    without = invoke([*args, "--plain"]).output.splitlines()
    assert without[2:] == ["  second line about cats", ""]
    table = invoke([*args, "--table"]).output.splitlines()
    assert table[0].split() == ["id", "score", "lines", "content", "metadata"]
    assert table[2].split()[0] == "doc.txt#2" and table[2].split()[2] == "2-2"
    documents = invoke([*args, "--documents", "--table"]).output.splitlines()
    assert documents[0].split() == ["id", "score", "chunks", "metadata"]
    assert (
        documents[2].split()[0] == "doc.txt" and documents[2].split()[2].rstrip(",") == "doc.txt#2"
    )

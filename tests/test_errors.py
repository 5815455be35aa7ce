"""Bad input: one clear line on stderr, exit 1, no traceback, nothing stored is lost."""

from __future__ import annotations

import sqlite3

import pytest
from checks import one_line_error

import vibes


@pytest.fixture
def seeded(db_path, test_plugin):
    """A database with two items already stored, to prove errors lose nothing."""
    collection = vibes.Database(db_path).collection("items", model="hash")
    collection.embed_multi([("keep-1", "first kept"), ("keep-2", "second kept")], store=True)
    return db_path


def count(db_path):
    return sqlite3.connect(db_path).execute("select count(*) from embeddings").fetchone()[0]


@pytest.mark.parametrize(
    "text, fmt, fragments",
    [
        ('id,text\n1,ok\n2,"unterminated\n', "csv", ["line", "malformed CSV"]),
        ("id,text\n1,ok\n2,too,many\n", "csv", ["stdin line 3", "3 fields, but the header has 2"]),
        ('[{"id": 1, "text": "a"},', "json", ["stdin line 1", "invalid JSON"]),
        ('[{"id": 1, "text": "a"}, 5]', "json", ["stdin item 2", "expected a JSON object"]),
        ('{"id": 1, "text": "a"}\n{"id": 2, "text": \n', "nl", ["stdin line 2", "invalid JSON"]),
        ('{"id": 1, "text": "a"}\n{"text": "no id here"}\n', "nl", ["stdin line 2"]),
        ('{"id": 1, "text": "a"}\n{"id": "", "text": "b"}\n', "nl", ["row has no id"]),
        ('{"id": 1, "text": "a"}\n{"id": 2, "text": "  "}\n', "nl", ["line 2", "empty content"]),
        ('{"id": 1, "metadata": "[1]", "t": "x"}\n', "nl", ["'metadata' must hold a JSON dict"]),
    ],
)
def test_malformed_input_names_the_line(run, seeded, text, fmt, fragments):
    result = run(["embed-multi", "items", "-", "--format", fmt, "-d", seeded], input=text)
    one_line_error(result, *fragments)
    assert count(seeded) == 2


def test_a_row_without_an_id_column_value(run, seeded):
    result = run(["embed-multi", "items", "-", "-d", seeded], input='{"text": "x", "id": null}\n')
    one_line_error(result, "stdin line 1: row has no id")


def test_unknown_collection(run, seeded):
    for args in (["similar", "nope", "-c", "x"], ["delete", "nope", "a"]):
        one_line_error(run([*args, "-d", seeded]), "Collection 'nope' does not exist")


def test_unknown_model(run, db_path):
    result = run(
        ["embed-multi", "items", "-", "-m", "no-such-model", "-d", db_path], input="id,t\n1,x\n"
    )
    one_line_error(result, "Unknown embedding model: no-such-model")
    one_line_error(run(["embed", "-c", "x", "-m", "no-such-model"]), "no-such-model")


def test_query_with_another_model_than_the_collections(run, seeded):
    result = run(["similar", "items", "-c", "x", "-m", "minilm", "-d", seeded])
    one_line_error(result, "uses model hash-test, not", vibes.models.DEFAULT_MODEL_ID)
    result = run(["embed", "items", "new", "-c", "x", "-m", "minilm", "-d", seeded])
    one_line_error(result, "uses model hash-test")
    assert count(seeded) == 2


def test_vectors_of_the_wrong_dimension(run, db_path, test_plugin):
    ok = run(
        ["embed", "sized", "a", "-c", "first", "-m", "resizable-test", "-d", db_path],
        env={"VIBES_TEST_DIMS": "8"},
    )
    assert ok.returncode == 0, ok.stderr
    result = run(
        ["embed-multi", "sized", "-", "-d", db_path],
        input="id,t\nb,second\n",
        env={"VIBES_TEST_DIMS": "12"},
    )
    one_line_error(result, "12 dimensions", "8-dimensional")
    assert count(db_path) == 1
    given = run(
        ["embed-multi", "sized", "-", "-d", db_path], input='{"id": "c", "embedding": [1, 2, 3]}\n'
    )
    one_line_error(given, "Given vectors have 3 dimensions")


def test_file_not_valid_in_any_given_encoding(run, tmp_path, seeded):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    result = run(
        ["embed-multi", "items", "--files", docs, "*.txt", "--encoding", "utf-8", "-d", seeded]
    )
    one_line_error(result, "bad.txt", "not valid text in utf-8")
    result = run(
        ["embed-multi", "items", "-", "--format", "csv", "-d", seeded],
        input=None,
        stdin=open(docs / "bad.txt", "rb"),
    )
    one_line_error(result, "stdin: not valid utf-8-sig text")
    assert count(seeded) == 2


def test_database_path_that_cannot_be_written(run, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    one_line_error(run(["embed", "c", "1", "-c", "x", "-d", missing]), "does not exist")
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("this is not a database " * 100)
    one_line_error(run(["collections", "-d", not_a_db]), "Cannot open database")


def test_read_only_directory_database_cannot_be_written(run, tmp_path, test_plugin):
    # Root ignores permission bits, so make the database unwritable the way root cannot
    # bypass: a path whose parent is a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(["embed", "c", "1", "-c", "x", "-m", "hash", "-d", blocker / "x.db"])
    one_line_error(result, "Cannot open database")


def test_similar_rejects_a_non_positive_number(run, seeded):
    result = run(["similar", "items", "keep-1", "-n", "0", "-d", seeded])
    assert result.returncode == 2 and "must be at least 1" in result.stderr
    with pytest.raises(vibes.VibesError, match="positive integer"):
        vibes.Database(seeded).collection("items").similar_by_id("keep-1", n=-1)


def test_missing_item(run, seeded):
    one_line_error(run(["similar", "items", "ghost", "-d", seeded]), "No item 'ghost'")
    result = run(["delete", "items", "keep-1", "ghost", "-d", seeded])
    one_line_error(result, "Not in collection 'items': 'ghost'")
    assert count(seeded) == 2  # all or nothing


def test_a_model_that_crashes_is_reported_in_one_line(run, seeded):
    result = run(["embed-multi", "items", "-", "-d", seeded], input="id,t\nz,FAIL here\n")
    one_line_error(result, "Model hash-test failed", "broke on purpose")
    assert count(seeded) == 2


def test_python_api_errors_are_vibes_errors(db_path, test_plugin):
    db = vibes.Database(db_path)
    with pytest.raises(vibes.UnknownCollectionError):
        db.collection("nope", create=False)
    with pytest.raises(vibes.UnknownModelError):
        db.collection("new", model="no-such-model")
    db.collection("items", model="hash").embed("a", "hello")
    with pytest.raises(vibes.ModelMismatchError):
        db.collection("items", model="minilm")
    with pytest.raises(vibes.InputError, match="empty content"):
        db.collection("items").embed("x", "")
    # A first write that fails leaves no collection behind.
    fresh = db.collection("fresh", model="hash")
    with pytest.raises(vibes.InputError, match="empty content"):
        fresh.embed("x", "")
    assert not fresh.exists
    assert not db.has_collection("new")
    assert [info.name for info in db.collections()] == ["items"]

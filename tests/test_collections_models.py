"""`vibes collections`, `delete`, `export`, `models`, `path` and `plugins`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import vibes


@pytest.fixture
def two_collections(db_path, test_plugin):
    db = vibes.Database(db_path)
    db.collection("alpha", model="hash").embed_multi(
        [("a1", "one", {"n": 1}), ("a2", "two words", None), ("a3", "three, with a comma\n", None)],
        store=True,
    )
    db.collection("beta", model="hash").embed("b1", "solo")
    return db_path


def test_collections_list_json_lines_and_table(invoke, two_collections):
    result = invoke(["collections", "-d", two_collections])
    assert [json.loads(line) for line in result.output.splitlines()] == [
        {"name": "alpha", "model": "hash-test", "count": 3, "dimensions": 16},
        {"name": "beta", "model": "hash-test", "count": 1, "dimensions": 16},
    ]
    table = invoke(["collections", "list", "--table", "-d", two_collections]).output.splitlines()
    assert table[0].split() == ["name", "model", "count", "dimensions"]
    assert table[2].split() == ["alpha", "hash-test", "3", "16"]


def test_collections_delete(invoke, two_collections):
    assert invoke(["collections", "delete", "beta", "-d", two_collections]).exit_code == 0
    names = [
        json.loads(x)["name"]
        for x in invoke(["collections", "-d", two_collections]).output.splitlines()
    ]
    assert names == ["alpha"]
    again = invoke(["collections", "delete", "beta", "-d", two_collections])
    assert again.exit_code == 1 and "does not exist" in again.output


def test_delete_items(invoke, two_collections):
    result = invoke(["delete", "alpha", "a1", "a2", "-d", two_collections])
    assert result.exit_code == 0 and "Deleted 2 items" in result.stderr
    assert vibes.Database(two_collections).collection("alpha").count() == 1


@pytest.mark.parametrize("fmt", ["nl", "json", "csv"])
@pytest.mark.parametrize("with_vectors", [False, True])
def test_export_reads_back_with_embed_multi(
    invoke, tmp_path, two_collections, monkeypatch, fmt, with_vectors
):
    out = tmp_path / f"export.{ {'nl': 'jsonl', 'json': 'json', 'csv': 'csv'}[fmt] }"
    args = ["collections", "export", "alpha", "--format", fmt, "-o", out, "-d", two_collections]
    result = invoke(args + (["--vectors"] if with_vectors else []))
    assert result.exit_code == 0, result.output
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    copied = invoke(["embed-multi", "copy", out, "-m", "hash", "--store", "-d", two_collections])
    assert copied.exit_code == 0, copied.output
    db = vibes.Database(two_collections)
    original, copy = db.collection("alpha"), db.collection("copy")
    assert list(copy.items(vectors=True)) == list(original.items(vectors=True))
    # With vectors, nothing goes through the model.
    assert log.exists() != with_vectors


def test_export_to_stdout_as_json_lines(invoke, two_collections):
    result = invoke(["collections", "export", "alpha", "-d", two_collections])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows[0] == {"id": "a1", "content": "one", "metadata": {"n": 1}}
    assert len(rows) == 3


def test_models_list_default_and_aliases(invoke, test_plugin):
    rows = [json.loads(line) for line in invoke(["models"]).output.splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert by_id[vibes.models.DEFAULT_MODEL_ID] == {
        "id": vibes.models.DEFAULT_MODEL_ID,
        "dimensions": 384,
        "aliases": ["minilm", "all-MiniLM-L6-v2"],
        "default": True,
    }
    assert by_id["hash-test"]["aliases"] == ["hash"]
    assert invoke(["models", "default"]).output.strip() == vibes.models.DEFAULT_MODEL_ID
    assert invoke(["models", "default", "hash"]).exit_code == 0
    assert invoke(["models", "default"]).output.strip() == "hash-test"
    assert vibes.get_model().model_id == "hash-test"
    unknown = invoke(["models", "default", "nope"])
    assert unknown.exit_code == 1 and "Unknown embedding model: nope" in unknown.output
    assert invoke(["models", "default", "--remove"]).exit_code == 0
    assert invoke(["models", "default"]).output.strip() == vibes.models.DEFAULT_MODEL_ID


def test_new_collections_use_the_chosen_default(invoke, db_path, test_plugin):
    invoke(["models", "default", "hash"])
    assert invoke(["embed-multi", "c", "-", "-d", db_path], input="id,t\n1,x\n").exit_code == 0
    assert vibes.Database(db_path).collection("c").model_id == "hash-test"


def test_path_follows_vibes_db_and_vibes_home(run, tmp_path, isolated_home):
    assert run(["path"]).stdout.strip() == str(isolated_home / "embeddings.db")
    assert run(["path"], env={"VIBES_DB": str(tmp_path / "x.db")}).stdout.strip() == str(
        tmp_path / "x.db"
    )


def test_default_database_is_created_in_the_user_dir(invoke, isolated_home, test_plugin):
    assert invoke(["embed", "c", "1", "-c", "hello", "-m", "hash"]).exit_code == 0
    assert (isolated_home / "embeddings.db").exists()


def test_plugin_is_loaded_through_its_entry_point(run, test_plugin):
    plugins = [json.loads(line) for line in run(["plugins"]).stdout.splitlines()]
    assert plugins == [
        {
            "name": "vibes_test_plugin",
            "hooks": ["register_chunkers", "register_embedding_models"],
            "version": "0.1",
        }
    ]
    models = [json.loads(line)["id"] for line in run(["models"]).stdout.splitlines()]
    assert "hash-test" in models and "resizable-test" in models
    hidden = run(["models"], env={"VIBES_DISABLE_PLUGINS": "1"}).stdout
    assert "hash-test" not in hidden


def test_startup_imports_nothing_heavy():
    code = (
        "import sys; from vibes.cli import cli; import vibes.cli.embed;"
        "heavy = [m for m in ('numpy', 'torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_python_m_vibes_and_version(run):
    result = run(["--version"])
    assert result.returncode == 0 and "0.1.0" in result.stdout

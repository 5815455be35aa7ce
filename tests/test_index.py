"""The approximate index: built automatically, kept in step with every writer, bypassed when
unusable, repaired by the next write; filters, distances and batch search."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import llm
import numpy as np
import pytest
import sqlite_utils

import vibes
import vibes.search.retrievers
from vibes.index import manager

DIMENSIONS = 16


def clustered(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIMENSIONS))
    return (centres[rng.integers(0, 8, count)] + 0.3 * rng.normal(size=(count, DIMENSIONS))).astype(
        np.float32
    )


def items(vectors: np.ndarray, start: int = 0, metadata=None):
    for i, vector in enumerate(vectors, start):
        yield {
            "id": f"v{i:04d}",
            "vector": vector.tolist(),
            "metadata": metadata(i) if metadata else {"group": i % 10, "even": i % 2 == 0},
        }


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "100")


@pytest.fixture
def indexed(db_path, test_plugin, small_threshold):
    """A collection of 400 clustered vectors, indexed automatically."""
    vectors = clustered(400)
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(vectors), batch_size=100)
    return collection, vectors


def answered_by(collection, monkeypatch) -> list[str]:
    """The names of the retrievers that answer this collection's searches, as they do."""
    answered: list[str] = []
    for retriever in collection.database.searcher.vector_retrievers:
        original = retriever.retrieve

        def spy(request, original=original, name=retriever.name):
            found = original(request)
            if found is not None:
                answered.append(name)
            return found

        monkeypatch.setattr(retriever, "retrieve", spy)
    return answered


def exact_ids(collection, query, n=10, **options):
    return [m.id for m in collection.similar_by_vector(query, n, exact=True, **options)]


def ann_ids(collection, query, n=10, **options):
    return [m.id for m in collection.similar_by_vector(query, n, **options)]


def ids_of(result) -> list[str]:
    return [json.loads(line)["id"] for line in result.output.splitlines()]


def recall(found: list[str], truth: list[str]) -> float:
    return len(set(found) & set(truth)) / len(truth)


def index_file(collection) -> Path:
    state = collection.index_state()
    return Path(collection.database.path + ".indexes") / state.file


def live_index(collection):
    live, problem = collection.database.indexes.open(collection.record)
    assert problem is None
    return live


def test_index_is_built_automatically_above_the_threshold(indexed, invoke, db_path):
    collection, vectors = indexed
    assert index_file(collection).is_file()
    status = json.loads(invoke(["index", "c", "-d", db_path]).output)
    assert status["kind"] == "hnsw" and status["usable"] is True
    assert status["indexed"] == 400 and status["stale"] is False
    assert status["parameters"] == {
        "connectivity": 32,
        "expansion_add": 64,
        "expansion_search": 96,
        "quantize": "i8",  # the default for cosine collections
    }
    assert status["bytes"] > 0 and status["vector_bytes"] == 400 * DIMENSIONS * 4
    assert status["scan_bytes"] == 400 * DIMENSIONS
    # Below the threshold, no index.
    small = collection.database.collection("small", model="hash")
    small.embed_multi(items(clustered(50)))
    assert json.loads(invoke(["index", "small", "-d", db_path]).output)["kind"] == "none"


def test_approximate_results_match_exact_ones(indexed, monkeypatch):
    collection, vectors = indexed
    queries = clustered(20, seed=3)
    answered = answered_by(collection, monkeypatch)
    approximate = [ann_ids(collection, q) for q in queries]
    # The graph answered every default search; the exact matrix none of them.
    assert answered == ["approximate"] * 20
    exact = [exact_ids(collection, q) for q in queries]
    assert answered[20:] == ["exact"] * 20
    hits = sum(len(set(a) & set(e)) for a, e in zip(approximate, exact))
    assert hits / (20 * 10) >= 0.95


def test_writes_by_vibes_are_searchable_at_once_without_rebuilding(indexed):
    collection, vectors = indexed
    file_before = index_file(collection)
    far = np.full(DIMENSIONS, 9.0, dtype=np.float32)
    collection.embed_multi([{"id": "new", "vector": far.tolist()}])
    assert ann_ids(collection, far, 1) == ["new"]
    collection.embed_multi([{"id": "v0007", "vector": (-far).tolist()}])  # replaced vector
    assert ann_ids(collection, -far, 1) == ["v0007"]
    collection.delete_items(["new"])
    assert "new" not in ann_ids(collection, far, 50)
    assert index_file(collection) == file_before  # the overlay, not a rebuild


def test_rows_changed_behind_its_back_are_never_trusted_stale(indexed, db_path, invoke):
    collection, vectors = indexed
    conn = sqlite3.connect(db_path)
    conn.execute("delete from embeddings where id = 'v0001'")
    conn.commit()
    assert "v0001" not in ann_ids(collection, vectors[1], 50)
    status = json.loads(invoke(["index", "c", "-d", db_path]).output)
    assert status["stale"] is True and status["pending_changes"] == 1

    # llm writes a new item into the same collection through its own API.
    class Fixed(llm.EmbeddingModel):
        model_id = "hash-test"

        def embed_batch(self, texts):
            for _ in texts:
                yield [5.0] * DIMENSIONS

    llm_collection = llm.Collection("c", sqlite_utils.Database(db_path), model=Fixed())
    llm_collection.embed("from-llm", "anything")
    assert ann_ids(collection, np.full(DIMENSIONS, 5.0), 1) == ["from-llm"]
    # A fresh process sees the same.
    fresh = vibes.Database(db_path).collection("c")
    assert ann_ids(fresh, np.full(DIMENSIONS, 5.0), 1) == ["from-llm"]
    assert "v0001" not in ann_ids(fresh, vectors[1], 50)


def test_exact_flag_drop_and_rebuild(indexed, invoke, db_path):
    collection, vectors = indexed
    exact = invoke(["similar", "c", "v0005", "--exact", "-d", db_path])
    default = invoke(["similar", "c", "v0005", "-d", db_path])
    assert exact.exit_code == 0 and default.exit_code == 0
    # An approximate graph may swap a near-tie, so agreement is measured as recall, not order.
    assert recall(ids_of(default), ids_of(exact)) >= 0.8
    file = index_file(collection)
    dropped = json.loads(invoke(["index", "c", "--drop", "-d", db_path]).output)
    assert dropped["kind"] == "off" and not file.exists()
    collection.embed_multi(items(clustered(10, seed=9), start=1000))
    assert collection.index_state().kind == "off"  # stays off
    rebuilt = json.loads(
        invoke(["index", "c", "--rebuild", "--connectivity", "8", "-d", db_path]).output
    )
    assert rebuilt["kind"] == "hnsw" and rebuilt["indexed"] == 410
    assert rebuilt["parameters"]["connectivity"] == 8
    # The rebuilt graph searches all 410 vectors, the ten added while it was off included.
    for query in ("v0005", "v1003"):
        again = invoke(["similar", "c", query, "-d", db_path])
        exact_now = invoke(["similar", "c", query, "--exact", "-d", db_path])
        assert recall(ids_of(again), ids_of(exact_now)) >= 0.8
    assert any(i.startswith("v10") for i in ids_of(again)[:5])
    assert invoke(["index", "c", "--drop", "--rebuild", "-d", db_path]).exit_code == 2


def test_build_threads_are_set_by_the_environment(indexed, invoke, db_path, monkeypatch):
    collection, vectors = indexed
    # One thread (the tests' setting) builds the same file from the same items every time.
    first = index_file(collection).read_bytes()
    assert invoke(["index", "c", "--rebuild", "-d", db_path]).exit_code == 0
    assert index_file(collection).read_bytes() == first
    monkeypatch.setenv("VIBES_INDEX_THREADS", "2")
    assert invoke(["index", "c", "--rebuild", "-d", db_path]).exit_code == 0
    assert collection.index_status()["indexed"] == 400
    for bad in ("0", "two", "-1", "²", "99999"):
        monkeypatch.setenv("VIBES_INDEX_THREADS", bad)
        failed = invoke(["index", "c", "--rebuild", "-d", db_path])
        assert failed.exit_code != 0
        assert f"$VIBES_INDEX_THREADS must be a whole number from 1 to 1024, not '{bad}'" in (
            failed.output
        )
        assert "Traceback" not in failed.output
    # The index that was there is kept, and still answers.
    assert collection.index_status()["usable"]
    assert ann_ids(collection, vectors[1], 5)[0] == "v0001"
    # A write whose index upkeep meets the bad setting keeps its rows and says why the
    # index was not updated.
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 1)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.0)
    with pytest.warns(manager.IndexWarning, match=r"\$VIBES_INDEX_THREADS must be a whole number"):
        collection.embed_multi(items(clustered(5, seed=3), start=2000))
    assert collection.count() == 405
    assert ann_ids(collection, clustered(5, seed=3)[0], 1) == ["v2000"]


@pytest.mark.parametrize("damage", ["corrupt", "missing", "truncated"])
def test_unusable_index_file_falls_back_to_exact_and_next_write_repairs(
    indexed, run, db_path, damage
):
    collection, vectors = indexed
    file = index_file(collection)
    if damage == "corrupt":
        file.write_bytes(b"not an index at all" * 100)
    elif damage == "missing":
        file.unlink()
    else:
        file.write_bytes(file.read_bytes()[:1000])
    result = run(["similar", "c", "v0003", "-n", "5", "-d", db_path])
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Warning: The index of collection 'c'")
    assert "searching exactly" in lines[0]
    got = [json.loads(x)["id"] for x in result.stdout.splitlines()]
    assert got == exact_ids(vibes.Database(db_path).collection("c"), vectors[3], 6)[1:]
    # The next write repairs it.
    collection.embed_multi(items(clustered(1, seed=5), start=2000))
    repaired = run(["similar", "c", "v0003", "-n", "5", "-d", db_path])
    assert repaired.stderr == ""
    status = json.loads(run(["index", "c", "-d", db_path]).stdout)
    assert status["usable"] is True and status["indexed"] == 401


def test_index_built_for_another_model_or_dimension_is_bypassed(indexed, run, db_path, invoke):
    collection, _ = indexed
    conn = sqlite3.connect(db_path)
    conn.execute("update vibes_indexes set model = 'other-model'")
    conn.commit()
    result = run(["similar", "c", "v0003", "-d", db_path])
    assert "was built for model other-model" in result.stderr
    assert len(result.stdout.splitlines()) == 10
    conn.execute("update vibes_indexes set model = 'hash-test', dimensions = 8")
    conn.commit()
    result = run(["similar", "c", "v0003", "-d", db_path])
    assert "has 8 dimensions" in result.stderr
    assert json.loads(invoke(["index", "c", "--rebuild", "-d", db_path]).output)["usable"]
    assert run(["similar", "c", "v0003", "-d", db_path]).stderr == ""


def test_crash_between_writing_rows_and_updating_the_index(indexed, db_path, monkeypatch):
    collection, _ = indexed

    def crash(self, target):
        raise KeyboardInterrupt  # the process dies after the rows were committed

    monkeypatch.setattr(manager.IndexManager, "maintain", crash)
    far = np.full(DIMENSIONS, -7.0, dtype=np.float32)
    with pytest.raises(KeyboardInterrupt):
        collection.embed_multi([{"id": "late", "vector": far.tolist()}])
    monkeypatch.undo()
    fresh = vibes.Database(db_path).collection("c")
    assert ann_ids(fresh, far, 1) == ["late"]  # the log covers what the index missed
    assert fresh.count() == 401


def test_overlay_is_folded_into_a_new_file_past_the_threshold(indexed, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 5)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.0)
    first = index_file(collection)
    collection.embed_multi(items(clustered(3, seed=11), start=3000))
    assert index_file(collection) == first
    collection.embed_multi(items(clustered(10, seed=12), start=4000))
    second = index_file(collection)
    assert second != first and not first.exists()
    live = live_index(collection)
    assert live.pending == 0 and len(live.hnsw) == 413
    assert ann_ids(collection, vectors[0], 1) == exact_ids(collection, vectors[0], 1)


def test_two_processes_writing_at_once(indexed, tmp_path, db_path, small_threshold):
    collection, _ = indexed
    script = (
        "import sys, numpy as np, vibes\n"
        "start = int(sys.argv[2])\n"
        "c = vibes.Database(sys.argv[1]).collection('c')\n"
        "rng = np.random.default_rng(start)\n"
        "for b in range(5):\n"
        "    c.embed_multi([{'id': f'p{start + b * 20 + i}',"
        " 'vector': rng.normal(size=16).tolist()} for i in range(20)])\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, db_path, str(start)])
        for start in (10_000, 20_000)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    fresh = vibes.Database(db_path).collection("c")
    assert fresh.count() == 600
    for item_id in ("p10000", "p10099", "p20000", "p20099"):
        vector = fresh.vector(item_id)
        assert ann_ids(fresh, vector, 1) == [item_id]


def test_filtered_search_returns_n_whenever_n_match(indexed, monkeypatch):
    collection, vectors = indexed
    query = vectors[0]
    for limit in (manager.EXACT_FILTER_LIMIT, 0):  # exact over candidates, then the graph
        monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", limit)
        few = collection.similar_by_vector(query, 10, filters=["group=3"])
        assert len(few) == 10 and all(m.metadata["group"] == 3 for m in few)
        assert [m.id for m in few] == exact_ids(collection, query, filters=["group=3"])
        rare = collection.similar_by_vector(query, 10, filters={"group": 3}, prefix="v000")
        assert [m.id for m in rare] == ["v0003"]
        many = collection.similar_by_vector(query, 10, filters=["even=true"])
        assert len(many) == 10 and all(m.metadata["even"] for m in many)
        assert [m.id for m in many] == exact_ids(collection, query, filters=["even=true"])


def spy_on_matching(store, monkeypatch) -> tuple[list[int], list[int]]:
    """(how many items each listing of every match found, how many keys each check of
    the graph's hits asked about), as searches call store.matching."""
    listed: list[int] = []
    checked: list[int] = []
    original = store.matching

    def spy(collection_id, condition, keys=None):
        found = original(collection_id, condition, keys)
        if keys is None:
            listed.append(len(found))
        else:
            checked.append(len(keys))
        return found

    monkeypatch.setattr(store, "matching", spy)
    return listed, checked


def test_a_filter_most_items_pass_is_checked_on_the_graph_hits_only(indexed, monkeypatch):
    collection, vectors = indexed
    queries = vectors[:5]
    # Collections of up to 20,000 items list what a filter lets through (cheap, and
    # exact): this one stands for a larger one. Deep enough for a filter 3 items in 10
    # pass to need a second, deeper round.
    monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", 0)
    monkeypatch.setattr(manager, "EXACT_FRACTION", 1.0)
    rounds: dict[str, float] = {}
    # Each item's metadata is {"group": i % 10, "even": i % 2 == 0} (items()).
    tests = {
        "even=true": lambda i: i % 2 == 0,
        "group in 1,2,3": lambda i: i % 10 in (1, 2, 3),
        "group!=3": lambda i: i % 10 != 3,
    }
    for expression, test in tests.items():
        passing = {f"v{i:04d}" for i in range(len(vectors)) if test(i)}
        truth = [exact_ids(collection, q, filters=[expression]) for q in queries]
        listed, checked = spy_on_matching(collection.database.store, monkeypatch)
        answered = answered_by(collection, monkeypatch)
        found = [ann_ids(collection, q, filters=[expression]) for q in queries]
        # Every hit passes; the graph is approximate, and may miss an item, as
        # unfiltered searches do.
        assert all(len(ids) == 10 for ids in found)
        assert all(set(ids) <= passing for ids in found)
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
        assert hits >= 0.95 * 10 * len(queries)
        assert answered == ["approximate"] * len(queries)
        # No read of every item's metadata: only the graph's hits were checked.
        assert listed == [] and 0 < max(checked) < len(vectors)
        rounds[expression] = len(checked) / len(queries)
    # Too few of the first 30 hits pass (3 in 10 do): it searched deeper.
    assert rounds["group in 1,2,3"] >= 2
    # A raw condition is checked on the hits too, braces and all.
    answered = answered_by(collection, monkeypatch)
    where = "metadata NOT LIKE '%{marks}%' AND id NOT IN ('{0}', 'v0000')"
    found = ann_ids(collection, queries[0], where=where)
    assert len(found) == 10 and "v0000" not in found and answered == ["approximate"]


def test_a_filter_too_few_hits_pass_lists_the_items_it_lets_through(indexed, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", 0)
    listed, checked = spy_on_matching(collection.database.store, monkeypatch)
    answered = answered_by(collection, monkeypatch)
    found = ann_ids(collection, vectors[0], filters={"group": 3}, prefix="v000")
    assert found == ["v0003"]
    assert checked and listed == [1] and answered == ["exact"]
    assert ann_ids(collection, vectors[0], filters=["group=99"]) == []
    # A small collection lists them at once: no graph hit is checked.
    monkeypatch.undo()
    listed, checked = spy_on_matching(collection.database.store, monkeypatch)
    assert ann_ids(collection, vectors[0], filters=["even=true"])
    assert listed == [200] and checked == []


def test_a_filter_checks_current_metadata_and_items_the_file_lacks(indexed, db_path, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", 0)
    answered = answered_by(collection, monkeypatch)
    query = vectors[7]
    best = exact_ids(collection, query, filters=["even=true"])[0]
    # A change of metadata alone (plain SQL here), which the graph never hears of.
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE embeddings SET metadata = json_set(metadata, '$.even', json('false')) "
            "WHERE id = ?",
            (best,),
        )
    answered.clear()
    found = ann_ids(collection, query, filters=["even=true"])
    assert answered == ["approximate"] and best not in found
    truth = exact_ids(collection, query, filters=["even=true"])
    assert best not in truth and len(set(found) & set(truth)) >= 9  # the graph is approximate
    # Items added since the file was saved (searched exactly beside it) are checked too.
    collection.embed_multi(
        items(np.stack([query, query]), start=1000, metadata=lambda i: {"even": i == 1000})
    )
    assert live_index(collection).overlay.delta is not None
    answered.clear()
    found = ann_ids(collection, query, filters=["even=true"])
    assert answered == ["approximate"]
    assert found[0] == "v1000" and "v1001" not in found


def test_a_filter_checks_the_best_of_many_recent_items_not_all(indexed, monkeypatch):
    collection, vectors = indexed
    monkeypatch.setattr(vibes.search.retrievers, "EXACT_FILTER_LIMIT", 0)
    monkeypatch.setattr(manager, "EXACT_FRACTION", 1.0)  # the graph may go deep: 400 items
    # 300 items since the file was saved: searched exactly beside it, not folded yet.
    recent = clustered(300, seed=5)
    collection.embed_multi(items(recent, start=1000))
    assert len(live_index(collection).overlay.delta.ids) == 300
    queries = np.vstack([recent[:3], vectors[:3]])
    truth = [exact_ids(collection, q, filters=["even=true"]) for q in queries]
    listed, checked = spy_on_matching(collection.database.store, monkeypatch)
    answered = answered_by(collection, monkeypatch)
    found = [ann_ids(collection, q, filters=["even=true"]) for q in queries]
    # The graph is approximate (see above).
    assert all(len(ids) == 10 for ids in found)
    assert sum(len(set(f) & set(t)) for f, t in zip(found, truth)) >= 0.95 * 10 * len(queries)
    assert answered == ["approximate"] * len(queries) and listed == []
    # Each check asked about the delta's best hits, never all 300 of its items.
    assert max(checked) < 300


def test_filter_operators_on_the_command_line(indexed, invoke, db_path):
    def ids(*args):
        result = invoke(["similar", "c", "v0000", "-n", "500", "-d", db_path, *args])
        assert result.exit_code == 0, result.output
        return {json.loads(line)["id"] for line in result.output.splitlines()}

    assert ids("--filter", "group=2") == {f"v{i:04d}" for i in range(2, 400, 10)}
    assert ids("--filter", "group>=8") == {f"v{i:04d}" for i in range(1, 400) if i % 10 >= 8}
    assert ids("--filter", "group in 1,2", "--filter", "group!=2") == {
        f"v{i:04d}" for i in range(1, 400, 10)
    }
    assert ids("--where", "id between 'v0010' and 'v0012'") == {"v0010", "v0011", "v0012"}
    assert ids("--prefix", "v039") == {f"v{i:04d}" for i in range(390, 400)}
    bad = invoke(["similar", "c", "v0000", "--where", "nonsense ((", "-d", db_path])
    assert bad.exit_code == 1 and "Invalid filter" in bad.output
    no_operator = invoke(["similar", "c", "v0000", "--filter", "group", "-d", db_path])
    assert no_operator.exit_code == 1 and "has no operator" in no_operator.output


def test_min_score(indexed):
    collection, vectors = indexed
    all_scores = [m.score for m in collection.similar_by_vector(vectors[0], 50)]
    cut = all_scores[20]
    kept = collection.similar_by_vector(vectors[0], 50, min_score=cut)
    assert len(kept) >= 21 and all(m.score >= cut for m in kept)


@pytest.mark.parametrize("distance", ["dot", "euclidean"])
def test_distances_are_recorded_and_used(db_path, test_plugin, small_threshold, distance, invoke):
    vectors = clustered(300, seed=4) * np.linspace(0.5, 3, 300)[:, None].astype(np.float32)
    db = vibes.Database(db_path)
    collection = db.collection("d", model="hash", distance=distance)
    collection.embed_multi(items(vectors))
    query = clustered(1, seed=8)[0]
    if distance == "dot":
        scores = vectors @ query
    else:
        scores = 1 / (1 + np.linalg.norm(vectors - query, axis=1))
    best = [f"v{i:04d}" for i in np.argsort(-scores)[:5]]
    exact = collection.similar_by_vector(query, 5, exact=True)
    assert [m.id for m in exact] == best
    assert np.allclose([m.score for m in exact], np.sort(scores)[::-1][:5], rtol=1e-4)
    assert len(set(ann_ids(collection, query, 5)) & set(best)) >= 4
    assert vibes.Database(db_path).collection("d").distance == distance
    with pytest.raises(vibes.VibesError, match=f"uses {distance} distance"):
        db.collection("d", distance="cosine")
    status = json.loads(invoke(["index", "d", "-d", db_path]).output)
    assert status["distance"] == distance


def test_zero_and_nan_vectors_are_rejected_at_write_time(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("z", model="hash")
    collection.embed("ok", "fine words")
    with pytest.raises(vibes.VibesError, match="all zeros"):
        collection.embed_multi([{"id": "zero", "vector": [0.0] * DIMENSIONS}])
    with pytest.raises(vibes.VibesError, match="NaN or infinity"):
        collection.embed_multi([{"id": "nan", "vector": [float("nan")] * DIMENSIONS}])
    assert collection.count() == 1


def test_batch_search_equals_one_query_at_a_time(indexed):
    collection, vectors = indexed
    queries = clustered(5, seed=21)
    batch = collection.similar_by_vectors(queries, 7)
    assert [[m.id for m in r] for r in batch] == [ann_ids(collection, q, 7) for q in queries]
    exact_batch = collection.similar_by_vectors(queries, 7, exact=True)
    assert [[m.id for m in r] for r in exact_batch] == [
        exact_ids(collection, q, 7) for q in queries
    ]
    texts = collection.similar_batch(["alpha words", "beta words"], 3)
    assert len(texts) == 2 and all(len(r) == 3 for r in texts)


def test_deleting_a_collection_removes_its_index(indexed, invoke, db_path):
    collection, _ = indexed
    file = index_file(collection)
    assert invoke(["collections", "delete", "c", "-d", db_path]).exit_code == 0
    assert not file.exists()
    conn = sqlite3.connect(db_path)
    for table in ("vibes_indexes", "vibes_keys", "vibes_changes"):
        assert conn.execute(f"select count(*) from {table}").fetchone()[0] == 0


def test_a_failed_index_update_loses_nothing(db_path, test_plugin, small_threshold, monkeypatch):
    def disk_full(self, collection, params=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manager.IndexManager, "build", disk_full)
    collection = vibes.Database(db_path).collection("c", model="hash")
    vectors = clustered(150)
    with pytest.warns(manager.IndexWarning, match="was not updated"):
        stats = collection.embed_multi(items(vectors))
    assert len(stats.warnings) == 1 and "No space left on device" in stats.warnings[0]
    assert collection.count() == 150
    assert ann_ids(collection, vectors[7], 1) == ["v0007"]  # exact search, no index yet


def test_index_fallback_reaches_api_callers_as_data(indexed):
    collection, vectors = indexed
    index_file(collection).unlink()
    with pytest.warns(manager.IndexWarning):
        results = collection.search(vectors[3], 5)
    assert [m.id for m in results] == exact_ids(collection, vectors[3], 5)
    assert len(results.warnings) == 1 and "file is missing" in results.warnings[0]
    assert collection.search(vectors[3], 5, exact=True).warnings == []


def test_the_change_log_is_kept_for_every_reader_and_pruned_below_the_lowest(indexed, db_path):
    collection, _vectors = indexed
    store = collection.database.store
    position = store.log_position(collection.id, manager.LOG_CONSUMER)
    assert position == collection.index_state().seq
    # Another reader (as the full-text index will be) lags behind the index.
    with store.transaction() as tx:
        store.advance_log(tx, collection.id, "other", position)
    collection.embed_multi(items(clustered(3, seed=30), start=5000))
    collection.database.indexes.compact(collection.record, live_index(collection))
    assert store.log_position(collection.id, manager.LOG_CONSUMER) > position
    # The index has moved on, but the changes the other reader has not seen are kept.
    _seq, changed = store.changes_since(collection.id, position)
    assert sorted(changed) == ["v5000", "v5001", "v5002"]
    with store.transaction() as tx:
        store.release_log(tx, collection.id, "other")
    assert store.changes_since(collection.id, position)[1] == []

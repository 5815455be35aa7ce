"""Quantised indexes (``vibes index --quantize f16|i8``): the graph and the exact scan keep
compact vectors, every hit is scored from the stored float32 vectors, the choice is kept
through writes, folds and repairs, and damage to a compact file is still caught."""

from __future__ import annotations

import json

import numpy as np
import pytest
import test_index
from test_index import DIMENSIONS, answered_by, clustered, index_file, items
from test_index_integrity import scribble

import vibes
from vibes.index import manager
from vibes.index.exact import ExactIndex, prepare_queries, top_k
from vibes.index.scan import QuantizedMatrix
from vibes.store.base import VectorMatrix

small_threshold = test_index.small_threshold


def true_ranking(vectors: np.ndarray, query: np.ndarray, distance: str, n: int) -> list[str]:
    """The n best ids by float64 arithmetic on the raw vectors."""
    vectors64, query64 = vectors.astype(np.float64), query.astype(np.float64)
    if distance == "cosine":
        scores = (vectors64 @ query64) / np.linalg.norm(vectors64, axis=1)
    elif distance == "dot":
        scores = vectors64 @ query64
    else:
        scores = -np.linalg.norm(vectors64 - query64, axis=1)
    return [f"v{i:04d}" for i in np.argsort(-scores, kind="stable")[:n]]


def reference_top_k(scores: np.ndarray, k: int) -> list[int]:
    """Best first by a full stable sort: ties by position, NaN after every number."""
    keys = -scores.astype(np.float64)
    return [int(p) for p in np.argsort(keys, kind="stable")[:k]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("k", [1, 7, 100, 999, 1000, 5000])
def test_top_k_is_a_full_sort_cut_short(dtype, k):
    rng = np.random.default_rng(k)
    cases = [
        rng.standard_normal(1000) * 50,
        rng.integers(-3, 4, 1000),  # many ties at the k-th value
        np.full(1000, 2.0),  # every score equal
    ]
    for scores in cases:
        scores = scores.astype(dtype)
        assert top_k(scores, k).tolist() == reference_top_k(scores, k)
    if dtype in (np.float32, np.float64):
        with_nan = (rng.standard_normal(1000) * 50).astype(dtype)
        with_nan[rng.choice(1000, 600, replace=False)] = np.nan  # fewer than k numbers too
        assert top_k(with_nan, k).tolist() == reference_top_k(with_nan, k)
    for kind in (np.int32, np.int64, np.uint64):
        info = np.iinfo(kind)
        extremes = np.array([info.min, 0, info.max, info.max // 2 + 5, 1], dtype=kind)
        assert (
            top_k(extremes, 5).tolist()
            == np.argsort([-float(v) for v in extremes], kind="stable").tolist()
        )
    assert top_k(np.array([False, True, False, True]), 3).tolist() == [1, 3, 0]
    assert top_k(np.empty(0, dtype=dtype), k).tolist() == []


@pytest.fixture(params=["f16", "i8"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_quantised_searches_return_the_exact_hits_with_float32_scores(
    db_path, test_plugin, small_threshold, distance, dtype, monkeypatch
):
    vectors = clustered(600, seed=11) * np.geomspace(0.5, 2, 600)[:, None].astype(np.float32)
    collection = vibes.Database(db_path).collection("q", model="hash", distance=distance)
    collection.embed_multi(items(vectors))
    collection.build_index(quantize=dtype)
    status = collection.index_status()
    assert status["quantize"] == dtype and status["usable"] is True
    width = {"f16": 2, "i8": 1}[dtype]
    assert status["scan_bytes"] == 600 * DIMENSIONS * width
    assert status["parameters"]["quantize"] == dtype and "scales" not in status["parameters"]

    answered = answered_by(collection, monkeypatch)
    found_by_graph = 0
    even = [i for i in range(0, 600, 2)]
    for query in clustered(15, seed=12):
        truth = true_ranking(vectors, query, distance, 10)
        for exact in (False, True):
            found = collection.search(query, 10, exact=exact)
            assert found.warnings == []
            if exact:
                # The same hits as float64 arithmetic finds, in its order (no ties here).
                assert [m.id for m in found] == truth
            else:  # a graph may pass over an item, compact or not
                found_by_graph += len({m.id for m in found} & set(truth))
            # Scores are the float32 scores of the stored vectors, not the compact ones.
            reference = ExactIndex(
                [m.id for m in found],
                np.stack([collection.vector(m.id) for m in found]),
                distance,
            )
            prepared = prepare_queries(query, DIMENSIONS, distance)
            expected = reference.scores(prepared)[0]
            assert [m.score for m in found] == pytest.approx(expected.tolist(), rel=1e-5)
        # A filter passing few items is answered by a scan of the compact copies.
        filtered = collection.search(query, 10, filters=["even=true"])
        subset = [f"v{i:04d}" for i in even]
        best = true_ranking(vectors[even], query, distance, 10)
        assert [m.id for m in filtered] == [subset[int(b[1:])] for b in best]
    assert found_by_graph >= 0.95 * 150
    assert answered.count("approximate") == 15 and answered.count("exact") == 30
    scan = collection.database.searcher.matrices.get(collection.record)
    assert isinstance(scan, QuantizedMatrix) and scan.quantizer.dtype == dtype


def test_the_int8_file_is_a_quarter_of_the_float32_one(db_path, test_plugin, small_threshold):
    collection = vibes.Database(db_path).collection("c", model="hash")
    vectors = clustered(2000, seed=3)
    collection.embed_multi(items(vectors))
    sizes = {}
    for dtype in ("f32", "f16", "i8"):
        collection.build_index(quantize=dtype)
        sizes[dtype] = collection.index_status()["bytes"]
    vector_bytes = 2000 * DIMENSIONS * 4
    # The graph's links are the same in each; the vectors shrink 2x and 4x.
    assert sizes["f32"] - sizes["f16"] == pytest.approx(vector_bytes / 2, rel=0.01)
    assert sizes["f32"] - sizes["i8"] == pytest.approx(vector_bytes * 3 / 4, rel=0.01)


def test_the_choice_survives_writes_folds_and_repairs(
    db_path, test_plugin, small_threshold, monkeypatch, invoke
):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(400)))
    built = invoke(["index", "c", "--rebuild", "--quantize", "i8", "-d", db_path])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["quantize"] == "i8"
    scales = json.loads(collection.index_state().params)["scales"]
    assert len(scales) == DIMENSIONS

    # Items added past the fold threshold are folded in with the file's own scales.
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 10)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.01)
    new = clustered(460)[400:]  # more of the same: within the fitted range, or nearly
    collection.embed_multi(items(new, start=400))
    status = collection.index_status()
    assert status["quantize"] == "i8" and status["indexed"] == 460
    assert status["pending_changes"] == 0 and status["usable"] is True
    assert json.loads(collection.index_state().params)["scales"] == scales
    hits = collection.search(new[5], 3)
    assert hits[0].id == "v0405" and hits.warnings == []

    # A rebuild keeps i8 unless told otherwise; a repair (the file deleted) too.
    collection.build_index(connectivity=8)
    assert collection.index_status()["quantize"] == "i8"
    index_file(collection).unlink()
    collection.embed_multi(items(clustered(1, seed=5), start=900))
    assert collection.index_status()["quantize"] == "i8"
    assert collection.index_status()["usable"] is True
    # And f32 when asked.
    collection.build_index(quantize="f32")
    params = json.loads(collection.index_state().params)
    assert params["quantize"] == "f32" and "scales" not in params


def test_new_indexes_take_the_environment_default(db_path, test_plugin, monkeypatch):
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "100")
    monkeypatch.setenv("VIBES_INDEX_QUANTIZE", "f16")
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(200)))
    assert collection.index_status()["quantize"] == "f16"
    monkeypatch.setenv("VIBES_INDEX_QUANTIZE", "i4")
    other = vibes.Database(db_path).collection("d", model="hash")
    with pytest.raises(vibes.VibesError, match=r"\$VIBES_INDEX_QUANTIZE is 'i4'"):
        other.build_index()


def test_command_line_errors(db_path, test_plugin, small_threshold, invoke):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(200)))
    wrong = invoke(["index", "c", "--quantize", "i8", "-d", db_path])
    assert wrong.exit_code == 2 and "apply with --rebuild" in wrong.output
    unknown = invoke(["index", "c", "--rebuild", "--quantize", "i4", "-d", db_path])
    assert unknown.exit_code == 2 and "'i4' is not one of" in unknown.output
    assert collection.index_status()["quantize"] == "i8"  # untouched: the default


@pytest.mark.parametrize("found_by", ["search", "status"])
@pytest.mark.parametrize("kind", ["f32", "f16"])  # int8, the default: test_index_integrity
def test_garbage_in_a_float_file_is_caught(db_path, test_plugin, small_threshold, found_by, kind):
    collection = vibes.Database(db_path).collection("c", model="hash")
    vectors = clustered(400)
    collection.embed_multi(items(vectors))
    collection.build_index(quantize=kind)
    scribble(collection, "v0000", 300)
    if found_by == "status":
        status = collection.index_status()
        assert status["usable"] is False and "damaged" in status["problem"]
    else:
        problems = []
        for query in vectors[:40]:
            found = collection.search(query, 5)
            problems += found.warnings
            assert [m.id for m in found] == [m.id for m in collection.search(query, 5, exact=True)]
        assert problems and "file is damaged" in problems[0]
    assert collection.index_state().kind == manager.DAMAGED_KIND


def test_a_sound_int8_index_is_never_called_damaged(db_path, test_plugin, small_threshold):
    # Near-duplicates and vectors of very different lengths, under dot distance.
    vectors = clustered(400, seed=6) * np.geomspace(0.01, 100, 400)[:, None].astype(np.float32)
    vectors[1::7] = vectors[::7][: len(vectors[1::7])] * np.float32(1.0000001)
    collection = vibes.Database(db_path).collection("d", model="hash", distance="dot")
    collection.embed_multi(items(vectors))
    collection.build_index(quantize="i8")
    assert collection.index_status()["usable"] is True
    for query in clustered(30, seed=7) * np.float32(3.0):
        assert collection.search(query, 5).warnings == []
    assert collection.index_state().kind == "hnsw"


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_the_int8_scan_matches_float32_on_a_subset_and_in_batches(distance):
    rng = np.random.default_rng(4)
    raw = rng.normal(size=(3000, 64)).astype(np.float32) * rng.uniform(0.2, 3, (3000, 1)).astype(
        np.float32
    )
    ids = [f"i{i}" for i in range(3000)]
    by_id = dict(zip(ids, raw))

    def fetch(wanted):
        return VectorMatrix(list(wanted), np.stack([by_id[w] for w in wanted]), None)

    exact = ExactIndex(ids, raw, distance)
    scan = QuantizedMatrix(ids, raw, distance, "i8", fetch)
    assert scan.nbytes < exact.matrix.nbytes / 3
    queries = prepare_queries(rng.normal(size=(6, 64)), 64, distance)
    rows = np.arange(1, 3000, 7)
    for subset in (None, rows):
        want = exact.search_many(queries, 12, rows=subset)
        got = scan.search_many(queries, 12, rows=subset)
        for w, g in zip(want, got):
            assert [i for i, _ in g] == [i for i, _ in w]
            assert [s for _, s in g] == pytest.approx([s for _, s in w], rel=1e-5)
    assert scan.search_many(queries, 0) == [[] for _ in range(6)]
    assert scan.search_many(queries, 5, rows=rows[:0]) == [[] for _ in range(6)]
    # More than there are: every row, in order.
    everything = scan.search_many(queries[:1], 5000, rows=rows)[0]
    assert len(everything) == len(rows)


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_int8_queries_fill_the_range_and_their_products_keep_the_float32_scale(distance):
    from vibes.index.quantize import Quantizer

    rng = np.random.default_rng(9)
    # Dimensions of very different ranges, as real embeddings have.
    items = (rng.normal(size=(500, 32)) * rng.uniform(0.01, 4, 32)).astype(np.float32)
    quantizer = Quantizer.fit(items, distance, "i8")
    queries = rng.normal(size=(8, 32)).astype(np.float32)
    queries[0] = 0.0
    queries[0, 5] = -3.0  # the largest component negative, every other zero
    encoded, factors = quantizer.encode_queries(queries)
    assert encoded.dtype == np.int8 and factors.shape == (8,)
    stored = quantizer.encode(items).astype(np.float64)
    if distance == "euclidean":
        assert np.abs(encoded).max() <= 127
        return
    # Each query's largest component takes the peak, with its sign.
    assert np.abs(encoded.astype(np.int64)).max(axis=1).tolist() == [127] * 8
    assert encoded[0, 5] == -127 and np.count_nonzero(encoded[0]) == 1
    # Compact products divided by the factor estimate the float32 ones.
    estimates = (encoded.astype(np.float64) @ stored.T) / factors[:, None]
    truth = queries.astype(np.float64) @ items.T.astype(np.float64)
    spread = np.abs(truth).max()
    assert np.abs(estimates - truth).max() < 0.05 * spread


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_a_search_s_few_rows_are_encoded_as_a_build_s_many(dtype, monkeypatch):
    from vibes.index import quantize

    rng = np.random.default_rng(4)
    rows = (rng.normal(size=(40, 32)) * rng.uniform(0.01, 4, 32)).astype(np.float32)
    quantizer = quantize.Quantizer.fit(rows, "cosine", dtype)
    rows[3, 5], rows[4, 6], rows[5, 7], rows[6, 8] = np.nan, np.inf, -np.inf, 1e30
    few = quantizer.encode(rows)  # one block: encoded at once
    monkeypatch.setattr(quantize, "BLOCK", 7)  # many blocks, as a large build has
    many = quantizer.encode(rows)
    assert few.dtype == many.dtype == {"f16": np.float16, "i8": np.int8}[dtype]
    assert np.array_equal(few, many)
    # NaN becomes 0 and infinities the type's largest value, with their sign.
    largest = 127 if dtype == "i8" else np.finfo(np.float16).max
    assert few[3, 5] == 0 and few[4, 6] == largest and few[5, 7] == -largest
    assert few[6, 8] == largest and np.isfinite(few.astype(np.float32)).all()


def test_vectors_with_nan_written_by_another_tool_do_not_break_the_scales(
    db_path, test_plugin, small_threshold
):
    import sqlite3

    collection = vibes.Database(db_path).collection("c", model="hash")
    vectors = clustered(400)
    collection.embed_multi(items(vectors))
    bad = np.full(DIMENSIONS, np.nan, dtype=np.float32)
    bad[0] = np.inf
    with sqlite3.connect(db_path) as conn:  # what plain SQL may store
        conn.execute("UPDATE embeddings SET embedding = ? WHERE id = 'v0007'", (bad.tobytes(),))
    collection.build_index(quantize="i8")
    params = json.loads(collection.index_state().params)
    assert all(np.isfinite(params["scales"])) and min(params["scales"]) > 0
    for exact in (True, False):
        found = collection.search(vectors[3], 5, exact=exact)
        assert found[0].id == "v0003" and "v0007" not in [m.id for m in found]


def test_a_fold_of_items_beyond_the_int8_range_fits_the_scales_again(
    db_path, test_plugin, small_threshold, monkeypatch
):
    # Indexed while small in value (an empty collection, or early items of small range),
    # then grown with items 50 times larger: folding them would clip every component.
    collection = vibes.Database(db_path).collection("e", model="hash", distance="euclidean")
    collection.embed_multi(items(clustered(200) * np.float32(0.02)))
    collection.build_index(quantize="i8")
    before = json.loads(collection.index_state().params)["scales"]
    monkeypatch.setattr(manager, "COMPACT_MIN_CHANGES", 10)
    monkeypatch.setattr(manager, "COMPACT_FRACTION", 0.01)
    large = clustered(300, seed=4)
    collection.embed_multi(items(large, start=200))
    after = json.loads(collection.index_state().params)["scales"]
    assert after[0] < before[0] / 10  # fitted to the new range
    status = collection.index_status()
    assert status["indexed"] == 500 and status["pending_changes"] == 0 and status["usable"]
    found = sum(collection.search(v, 1)[0].id == f"v{200 + i:04d}" for i, v in enumerate(large))
    assert found >= 295


def test_a_wrong_quantize_setting_never_costs_a_write(db_path, test_plugin, monkeypatch, invoke):
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "100")
    monkeypatch.setenv("VIBES_INDEX_QUANTIZE", "int8")
    collection = vibes.Database(db_path).collection("c", model="hash")
    with pytest.warns(UserWarning, match=r"\$VIBES_INDEX_QUANTIZE is 'int8'"):
        stats = collection.embed_multi(items(clustered(150)))
    assert collection.count() == 150 and stats.warnings
    result = invoke(["index", "c", "--rebuild", "-d", db_path])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: $VIBES_INDEX_QUANTIZE")


def test_the_scan_follows_the_index_type_in_a_long_running_process(
    db_path, test_plugin, small_threshold
):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(400)))
    matrices = collection.database.searcher.matrices
    collection.search(clustered(1)[0], 3, exact=True)
    assert isinstance(matrices.get(collection.record), QuantizedMatrix)  # i8, the default
    other = vibes.Database(db_path).collection("c")  # another handle (another process)
    other.build_index(quantize="f32")
    assert isinstance(matrices.get(collection.record), ExactIndex)
    other.build_index(quantize="f16")
    assert matrices.get(collection.record).quantizer.dtype == "f16"
    other.drop_index()
    assert isinstance(matrices.get(collection.record), ExactIndex)


@pytest.mark.parametrize(
    ("dtype", "distance"), [("i8", "cosine"), ("f16", "cosine"), ("f16", "euclidean")]
)
def test_a_compact_scan_looks_past_its_first_candidates_among_near_duplicates(dtype, distance):
    # 3,000 items closer together than int8 (or float16) can tell apart, among others:
    # the scan must look past its first candidates while one left out could win. (Only
    # a float32 scan is exact by construction: --exact uses one, see the next test.)
    rng = np.random.default_rng(8)
    base = rng.normal(size=64).astype(np.float32)
    base /= np.linalg.norm(base)
    near = base + 2e-3 * rng.normal(size=(3000, 64)).astype(np.float32)
    other = rng.normal(size=(500, 64)).astype(np.float32)
    raw = np.vstack([other, near])
    ids = [f"i{i}" for i in range(len(raw))]
    by_id = dict(zip(ids, raw))

    def fetch(wanted):
        return VectorMatrix(list(wanted), np.stack([by_id[w] for w in wanted]), None)

    exact = ExactIndex(ids, raw, distance)
    scan = QuantizedMatrix(ids, raw, distance, dtype, fetch)
    query = prepare_queries(base, 64, distance)
    want = exact.search_many(query, 10)[0]
    got = scan.search_many(query, 10)[0]
    assert [i for i, _ in got] == [i for i, _ in want]
    rows = np.arange(0, len(raw), 2)
    assert [i for i, _ in scan.search_many(query, 10, rows=rows)[0]] == [
        i for i, _ in exact.search_many(query, 10, rows=rows)[0]
    ]


def test_the_recorded_search_depth_is_used_by_every_process(db_path, test_plugin, small_threshold):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(300)))
    collection.build_index(expansion_search=200)
    reopened = vibes.Database(db_path)  # as another process opens the file
    live, problem = reopened.indexes.open(reopened.collection("c").record)
    assert problem is None and live is not None
    assert live.hnsw._index.expansion_search == 200


def test_the_search_depth_changes_in_place_for_every_process(
    db_path, test_plugin, small_threshold, invoke
):
    collection = vibes.Database(db_path).collection("c", model="hash")
    collection.embed_multi(items(clustered(300)))
    collection.build_index()
    before = collection.index_state()
    searcher = vibes.Database(db_path)  # a long-running process, with the index open
    live, _ = searcher.indexes.open(searcher.collection("c").record)
    assert live is not None and live.hnsw._index.expansion_search == 96
    result = invoke(["index", "c", "--expansion-search", "40", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["parameters"]["expansion_search"] == 40
    after = collection.index_state()
    # The same file, the same scales: only the depth changed.
    assert after.file == before.file and after.size == before.size
    recorded, previous = json.loads(after.params), json.loads(before.params)
    assert recorded.pop("expansion_search") == 40
    previous.pop("expansion_search")
    assert recorded == previous
    live, _ = searcher.indexes.open(searcher.collection("c").record)
    assert live is not None and live.hnsw._index.expansion_search == 40
    hits = searcher.collection("c").similar_by_vector(clustered(1, seed=5)[0], 5)
    assert len(hits) == 5
    # A rebuild keeps the depth.
    collection.build_index()
    assert json.loads(collection.index_state().params)["expansion_search"] == 40


def test_a_search_depth_needs_an_index(db_path, test_plugin, invoke):
    vibes.Database(db_path).collection("c", model="hash").embed_multi(items(clustered(20)))
    result = invoke(["index", "c", "--expansion-search", "40", "-d", db_path])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: Collection 'c' has no index to set a search depth for: build one with --rebuild"
    ]
    mixed = invoke(["index", "c", "--expansion-search", "40", "--connectivity", "8", "-d", db_path])
    assert mixed.exit_code == 2 and "apply with --rebuild" in mixed.output


def test_exact_searches_read_float32_whatever_the_index_keeps(
    db_path, test_plugin, small_threshold
):
    # Near-duplicates closer together than int8 can tell apart, under euclidean distance
    # (one coarse scale for all dimensions): --exact must still rank them exactly.
    rng = np.random.default_rng(8)
    base = rng.normal(size=DIMENSIONS).astype(np.float32)
    near = base + 2e-3 * rng.normal(size=(300, DIMENSIONS)).astype(np.float32)
    vectors = np.vstack([rng.normal(size=(100, DIMENSIONS)).astype(np.float32) * 5, near])
    collection = vibes.Database(db_path).collection("e", model="hash", distance="euclidean")
    collection.embed_multi(items(vectors))
    collection.build_index(quantize="i8")
    found = collection.search(base, 10, exact=True)
    # What a float32 scan of every vector ranks (near-duplicates this close are ranked
    # by float32 rounding; float64 may order them otherwise).
    scan = ExactIndex([f"v{i:04d}" for i in range(len(vectors))], vectors, "euclidean")
    best = scan.search_many(prepare_queries(base, DIMENSIONS, "euclidean"), 10)[0]
    assert [m.id for m in found] == [item_id for item_id, _ in best]
    matrices = collection.database.searcher.matrices
    assert isinstance(matrices.get(collection.record, float32=True), ExactIndex)
    assert isinstance(matrices.get(collection.record), QuantizedMatrix)

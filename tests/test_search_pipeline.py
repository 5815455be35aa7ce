"""The search pipeline on its own: retrievers in order, fusion, skipping, min_score,
hydration, document grouping and warnings as data; then one Database from many threads."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import vibes
from vibes.errors import VibesError
from vibes.filters import build_filter
from vibes.index.manager import IndexManager, IndexWarning
from vibes.items import Query
from vibes.search import Searcher, SearchOptions, fuse
from vibes.store import ChunkRecord, DocumentRecord, ItemWrite, open_store

# Unit vectors at known angles from the query (1, 0, 0): cosine scores are their x.
VECTORS = {
    "a": [1.0, 0.0, 0.0],
    "b": [0.9, 0.43588989, 0.0],
    "c": [0.5, 0.8660254, 0.0],
    "d": [0.0, 1.0, 0.0],
    "e": [-1.0, 0.0, 0.0],
}
QUERY = np.array([1.0, 0.0, 0.0], dtype=np.float32)


@pytest.fixture
def setup():
    store = open_store(":memory:")
    target = store.create_collection("t", "test-model", 3)
    with store.transaction() as tx:
        store.upsert(
            tx,
            target.id,
            [
                ItemWrite(
                    item_id,
                    np.asarray(vector, dtype=np.float32),
                    f"text of {item_id}",
                    None,
                    item_id.encode() * 16,
                    {"letter": item_id, "vowel": item_id in "ae"},
                    0,
                )
                for item_id, vector in VECTORS.items()
            ],
        )
    searcher = Searcher(store, IndexManager(store))
    yield store, target, searcher
    store.close()


def ids(results) -> list[str]:
    return [match.id for match in results]


def test_exact_ranking_scores_and_hydration(setup):
    _store, target, searcher = setup
    (results,) = searcher.search(target, [Query(vector=QUERY)], SearchOptions(n=3))
    assert ids(results) == ["a", "b", "c"]
    assert [round(m.score, 4) for m in results] == [1.0, 0.9, 0.5]
    assert results[1].content == "text of b"
    assert results[1].metadata == {"letter": "b", "vowel": False}
    assert results.warnings == []


def test_query_by_id_leaves_the_item_out_and_still_returns_n(setup):
    _store, target, searcher = setup
    (results,) = searcher.search(target, [Query(id="b")], SearchOptions(n=3))
    assert ids(results) == ["a", "c", "d"]
    (results,) = searcher.search(target, [Query(vector=QUERY, exclude="a")], SearchOptions(n=2))
    assert ids(results) == ["b", "c"]
    with pytest.raises(vibes.ItemNotFoundError, match="No item 'zz'"):
        searcher.search(target, [Query(id="zz")], SearchOptions())


def test_min_score_and_filters_narrow_the_results(setup):
    _store, target, searcher = setup
    (results,) = searcher.search(target, [Query(vector=QUERY)], SearchOptions(n=5, min_score=0.6))
    assert ids(results) == ["a", "b"]
    vowels = SearchOptions(n=5, filters=build_filter(["vowel=true"]))
    (results,) = searcher.search(target, [Query(vector=QUERY)], vowels)
    assert ids(results) == ["a", "e"]
    nothing = SearchOptions(n=5, filters=build_filter(["letter=z"]))
    assert searcher.search(target, [Query(vector=QUERY)], nothing) == [[]]


class Declining:
    """A retriever that cannot answer, and says why."""

    name = "declining"
    filters_in_database = False

    def __init__(self) -> None:
        self.calls = 0

    def retrieve(self, request):
        self.calls += 1
        request.warnings.append("The index of collection 't' is broken")
        return None


class Recording:
    """A retriever that answers with a fixed ranking and records what it was asked."""

    name = "recording"
    filters_in_database = False

    def __init__(self, ranking) -> None:
        self.ranking = ranking
        self.requests = []

    def retrieve(self, request):
        self.requests.append(request)
        return [list(self.ranking) for _ in range(request.queries.shape[0])]


def test_retrievers_are_asked_in_order_and_warnings_travel_as_data(setup):
    _store, target, searcher = setup
    declining, recording = Declining(), Recording([("d", 0.7), ("c", 0.6), ("a", 0.5)])
    searcher.vector_retrievers = [declining, recording]
    with pytest.warns(IndexWarning, match="is broken"):
        results = searcher.search(
            target, [Query(vector=QUERY), Query(vector=-QUERY)], SearchOptions(n=2)
        )
    assert declining.calls == 1 and len(recording.requests) == 1
    request = recording.requests[0]
    assert request.k == 2 and request.queries.shape == (2, 3) and request.answered_by == "recording"
    assert [ids(r) for r in results] == [["d", "c"], ["d", "c"]]
    assert all(r.warnings == ["The index of collection 't' is broken"] for r in results)


def test_filters_reach_the_retrievers_as_candidates(setup):
    _store, target, searcher = setup
    recording = Recording([("e", 0.1)])
    searcher.vector_retrievers = [recording]
    options = SearchOptions(n=2, filters=build_filter(["vowel=true"]))
    searcher.search(target, [Query(vector=QUERY)], options)
    assert sorted(recording.requests[0].candidates.ids) == ["a", "e"]
    searcher.search(
        target, [Query(vector=QUERY)], SearchOptions(n=2, filters=build_filter(["letter=q"]))
    )
    assert len(recording.requests) == 1  # nothing matched: no retriever was asked


def test_text_queries_are_encoded_in_one_call_and_its_notes_kept(setup):
    _store, target, searcher = setup
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.stack([QUERY, -QUERY])[: len(texts)], ["The model cut 1 text"]

    queries = [Query(text="first"), Query(vector=QUERY), Query(text="second")]
    results = searcher.search(target, queries, SearchOptions(n=1), encode=encode)
    assert calls == [["first", "second"]]  # one model call for every text
    assert [ids(r) for r in results] == [["a"], ["a"], ["e"]]
    assert results[0].warnings == ["The model cut 1 text"]
    with pytest.raises(vibes.VibesError, match="need the collection's model"):
        searcher.search(target, [Query(text="x")], SearchOptions())
    with pytest.raises(vibes.VibesError, match="No content"):
        searcher.search(target, [Query(text="")], SearchOptions(), encode=encode)
    assert len(calls) == 1


def test_bad_options_are_refused_before_any_work(setup):
    _store, target, searcher = setup
    for options, message in [
        (SearchOptions(n=0), "positive integer"),
        (SearchOptions(context=-1), "context"),
        (SearchOptions(documents=True, document_score="median"), "Unknown document score"),
    ]:
        with pytest.raises(vibes.VibesError, match=message):
            searcher.search(target, [Query(vector=QUERY)], options)
    with pytest.raises(vibes.DimensionMismatchError):
        searcher.search(target, [Query(vector=[1.0, 0.0])], SearchOptions())


def test_an_empty_collection_answers_nothing(setup):
    store, _target, searcher = setup
    empty = store.create_collection("empty", "test-model", None)
    assert searcher.search(empty, [Query(vector=QUERY)], SearchOptions()) == [[]]


@pytest.fixture
def documents(setup):
    """Two documents of chunks: doc1 (a, b, c) and doc2 (d, e)."""
    store, target, searcher = setup
    layout = {
        "a": ("doc1", 0),
        "b": ("doc1", 1),
        "c": ("doc1", 2),
        "d": ("doc2", 0),
        "e": ("doc2", 1),
    }
    with store.transaction() as tx:
        store.upsert_chunks(
            tx,
            target.id,
            [
                ChunkRecord(item_id, doc, index, 0, 1, 10 * index + 1, 10 * index + 9, None)
                for item_id, (doc, index) in layout.items()
            ],
        )
        for doc, count in (("doc1", 3), ("doc2", 2)):
            store.finish_document(
                tx, target.id, DocumentRecord(doc, None, "lines", "{}", None, 1, count)
            )
    return store, target, searcher


def test_chunk_hits_carry_their_document_lines_and_neighbours(documents):
    _store, target, searcher = documents
    (results,) = searcher.search(target, [Query(vector=QUERY)], SearchOptions(n=2, context=1))
    assert results[1].id == "b" and results[1].document == "doc1" and results[1].lines == (11, 19)
    assert [c["id"] for c in results[1].context] == ["a", "b", "c"]
    assert [c["id"] for c in results[0].context] == ["a", "b"]  # the first chunk has no before
    assert results[0].context[1]["content"] == "text of b"


@pytest.mark.parametrize(
    "score, expected",
    [("max", ["doc1", "doc2"]), ("sum", ["doc1", "doc2"]), ("mean", ["doc1", "doc2"])],
)
def test_documents_are_ranked_by_their_chunks(documents, score, expected):
    _store, target, searcher = documents
    options = SearchOptions(n=2, documents=True, document_score=score, chunks_per_document=2)
    (results,) = searcher.search(target, [Query(vector=QUERY)], options)
    assert [d.id for d in results] == expected
    doc1 = results[0]
    assert [c.id for c in doc1.chunks] == ["a", "b"]  # the best two of its three
    chunk_scores = {"max": 1.0, "sum": 1.0 + 0.9 + 0.5, "mean": (1.0 + 0.9 + 0.5) / 3}
    assert doc1.score == pytest.approx(chunk_scores[score], rel=1e-5)
    (by_doc,) = searcher.search(target, [Query(vector=QUERY, exclude="doc1")], options)
    assert [d.id for d in by_doc] == ["doc2"]  # searching by a document leaves it out


def test_fusion():
    one = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    assert fuse({"vector": one}, 2)[0] == [("a", 0.9), ("b", 0.5)]  # one leg: untouched
    assert fuse({}, 3) == ([], {})
    other = [("b", 12.0), ("c", 7.0)]
    fused, details = fuse({"vector": one, "text": other}, 3, k=60)
    assert [item for item, _ in fused] == ["b", "c", "a"]  # agreed on by both legs first
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[2][1] == pytest.approx(1 / 61)
    assert details["b"] == {"vector": (2, 0.5), "text": (1, 12.0)}
    assert details["a"] == {"vector": (1, 0.9)}  # the text leg missed it
    # Weights scale each leg's share: a leg weighted 0 no longer moves anything.
    only_text, _ = fuse({"vector": one, "text": other}, 3, weights={"vector": 0.0})
    assert [item for item, _ in only_text][:2] == ["b", "c"]
    assert dict(only_text)["a"] == 0.0


def test_weighted_fusion_scales_each_leg_to_its_own_range():
    vector = [("a", 0.90), ("b", 0.80), ("c", 0.70)]
    text = [("c", 30.0), ("d", 20.0), ("a", 10.0)]
    fused, _ = fuse(
        {"vector": vector, "text": text}, 4, method="weighted", weights={"vector": 0.5, "text": 0.5}
    )
    scores = dict(fused)
    # a: best vector (1.0), worst text (0.0); c: worst vector (0.0), best text (1.0).
    assert scores["a"] == pytest.approx(0.5) and scores["c"] == pytest.approx(0.5)
    assert scores["b"] == pytest.approx(0.25) and scores["d"] == pytest.approx(0.25)
    leaning, _ = fuse(
        {"vector": vector, "text": text}, 1, method="weighted", weights={"vector": 0.8, "text": 0.2}
    )
    assert leaning[0][0] == "a"


def test_fusion_options_are_checked():
    with pytest.raises(VibesError, match="Unknown fusion 'max'"):
        SearchOptions(fusion="max").check()
    with pytest.raises(VibesError, match="vector weight must be a number from 0 to 1"):
        SearchOptions(weight=1.5).check()
    with pytest.raises(VibesError, match="Unknown search mode 'both'"):
        SearchOptions(mode="both").check()
    with pytest.raises(VibesError, match="rrf_k must be a positive integer"):
        SearchOptions(rrf_k=0).check()


def test_one_database_serves_many_threads(tmp_path, test_plugin):
    """Searches from eight threads while another thread writes: every search answers from
    a consistent state, no thread sees a database error."""
    db = vibes.Database(tmp_path / "threads.db")
    collection = db.collection("c", model="hash")
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    collection.embed_multi({"id": f"v{i}", "vector": v.tolist()} for i, v in enumerate(base))
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher_thread(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            for _ in range(40):
                i = int(local.integers(0, 300))
                hits = collection.similar_by_vector(base[i], 3)
                assert hits[0].id == f"v{i}" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            errors.append(error)

    def writer_thread() -> None:
        try:
            n = 0
            while not stop.is_set() and n < 30:
                far = rng.normal(size=16).astype(np.float32) * 50
                collection.embed_multi([{"id": f"w{n}", "vector": far.tolist()}])
                n += 1
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        threads = [threading.Thread(target=searcher_thread, args=(s,)) for s in range(8)]
        writer = threading.Thread(target=writer_thread)
        for thread in [*threads, writer]:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        stop.set()
        writer.join(timeout=120)
    assert errors == []
    assert collection.count() >= 300
    ids_, matrix = collection.matrix()
    assert matrix.shape == (len(ids_), 16) and matrix.dtype == np.float32
    position = ids_.index("v7")
    assert np.array_equal(matrix[position], base[7])
    db.close()

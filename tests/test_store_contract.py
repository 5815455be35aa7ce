"""The storage contract: what every backend behind :class:`vibes.store.Store` must do.

Every test here goes through the ``Store`` interface only, and runs once per backend in
:data:`BACKENDS`; a new backend (PostgreSQL next) joins by adding one entry there. The few
tests at the end that need SQLite itself (raw SQL conditions, ``read_query``, a write made
behind the store's back) are marked as such and run on the SQLite backends only.
"""

from __future__ import annotations

import datetime
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vibes
from vibes.filters import Compare, Filter, IdPrefix, OneOf, RawSQL, build_filter
from vibes.store import (
    ChunkRecord,
    ChunkText,
    ClusterRecord,
    CollectionInfo,
    CollectionRecord,
    DocumentRecord,
    IndexState,
    ItemUpdate,
    ItemWrite,
    RelatedState,
    Store,
    StoredItem,
    open_store,
)

#: Every file backend the contract runs against: name -> a factory given pytest's tmp_path
#: (and PostgreSQL, on the session's local server: see the ``store`` fixture).
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite-file": lambda tmp_path: open_store(tmp_path / "c.db"),
    "sqlite-memory": lambda tmp_path: open_store(":memory:"),
}
#: The backends that speak SQLite's SQL (for the dialect-specific tests at the end).
SQLITE_BACKENDS = ["sqlite-file", "sqlite-memory"]

DIMS = 4
NOW = 1_700_000_000


@pytest.fixture(params=[*BACKENDS, "postgresql"])
def store(request, tmp_path) -> Any:
    if request.param == "postgresql":
        opened = open_store(request.getfixturevalue("pg_url"))
    else:
        opened = BACKENDS[request.param](tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def cid(store) -> int:
    """A fresh collection of 4-dimensional vectors."""
    return store.create_collection("docs", "test-model", DIMS).id


# -- helpers -------------------------------------------------------------------------------------


def vector(seed: int, dims: int = DIMS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


def digest(text: str) -> bytes:
    return hashlib.md5(text.encode("utf-8")).digest()


def item(
    item_id: str,
    seed: int | None = None,
    *,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
    blob: bytes | None = None,
    dims: int = DIMS,
    vec: np.ndarray | None = None,
) -> ItemWrite:
    text = content if content is not None else f"content of {item_id}"
    return ItemWrite(
        id=item_id,
        vector=vec
        if vec is not None
        else vector(seed if seed is not None else hash_seed(item_id), dims),
        content=None if blob is not None else text,
        content_blob=blob,
        content_hash=digest(text) if blob is None else hashlib.md5(blob).digest(),
        metadata=metadata,
        updated=NOW,
    )


def hash_seed(text: str) -> int:
    return int.from_bytes(digest(text)[:4], "little")


def put(store: Store, collection_id: int, items: Sequence[ItemWrite]) -> None:
    with store.transaction() as tx:
        store.upsert(tx, collection_id, items)


def delete(store: Store, collection_id: int, ids: Sequence[str]) -> int:
    with store.transaction() as tx:
        return store.delete_items(tx, collection_id, ids)


def matching_ids(store: Store, collection_id: int, *conditions: Any) -> set[str]:
    candidates = store.matching(collection_id, Filter(tuple(conditions)))
    assert len(candidates.ids) == len(candidates.keys)
    assert len(set(candidates.ids)) == len(candidates.ids)
    return set(candidates.ids)


def write_from_another_thread(store: Store, collection_id: int, item_id: str) -> None:
    """A write from a second thread finishes: no lock is left held by a failed write."""
    errors: list[BaseException] = []

    def write() -> None:
        try:
            put(store, collection_id, [item(item_id)])
        except BaseException as error:  # reported below, in the main thread
            errors.append(error)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(timeout=15)
    assert not thread.is_alive(), "a write from another thread is blocked"
    assert not errors, errors
    assert store.get_vector(collection_id, item_id) is not None


# -- collections ---------------------------------------------------------------------------------


def test_create_and_get_collection(store):
    created = store.create_collection("docs", "model-a", 3)
    assert isinstance(created, CollectionRecord)
    assert (created.name, created.model, created.dimensions, created.distance) == (
        "docs",
        "model-a",
        3,
        "cosine",
    )
    assert store.get_collection("docs") == created
    assert store.get_collection("missing") is None
    other = store.create_collection("dots", "model-b", None, distance="dot")
    assert other.id != created.id
    assert store.get_collection("dots") == other
    assert (other.dimensions, other.distance) == (None, "dot")


def test_list_collections_counts_and_dimensions(store):
    beta = store.create_collection("beta", "model-b", 3)
    alpha = store.create_collection("alpha", "model-a", None)
    put(store, alpha.id, [item("x", dims=5), item("y", dims=5)])
    listed = store.list_collections()
    assert all(isinstance(info, CollectionInfo) for info in listed)
    assert listed == [
        CollectionInfo("alpha", "model-a", 2, 5),  # dimensions read off a stored vector
        CollectionInfo("beta", "model-b", 0, 3),
    ]
    assert listed[0].to_dict() == {"name": "alpha", "model": "model-a", "count": 2, "dimensions": 5}
    assert store.count(alpha.id) == 2 and store.count(beta.id) == 0


def test_set_dimensions_in_a_transaction(store):
    record = store.create_collection("docs", "m", None)
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            store.set_dimensions(tx, record.id, 9)
            raise RuntimeError("rolled back")
    assert store.get_collection("docs").dimensions is None
    with store.transaction() as tx:
        store.set_dimensions(tx, record.id, 7)
    assert store.get_collection("docs").dimensions == 7
    assert store.list_collections() == [CollectionInfo("docs", "m", 0, 7)]


def test_sample_dimensions(store):
    record = store.create_collection("docs", "m", None)
    assert store.sample_dimensions(record.id) is None
    put(store, record.id, [item("a", dims=6)])
    assert store.sample_dimensions(record.id) == 6


def test_delete_collection_removes_everything_it_owns(store):
    doomed = store.create_collection("doomed", "m", DIMS)
    kept = store.create_collection("kept", "m", DIMS)
    for record in (doomed, kept):
        put(store, record.id, [item("doc#0"), item("doc#1"), item("plain")])
        with store.transaction() as tx:
            store.upsert_chunks(
                tx,
                record.id,
                [ChunkRecord(f"doc#{i}", "doc", i, None, None, None, None, None) for i in (0, 1)],
            )
            store.finish_document(
                tx, record.id, DocumentRecord("doc", None, "lines", None, None, 1, 2)
            )
            store.ensure_keys(tx, record.id)
            store.save_index_state(
                tx,
                IndexState(
                    record.id, "hnsw", f"{record.name}.idx", 1, 3, DIMS, "m", "cosine", None, 1
                ),
                None,
            )
            store.advance_log(tx, record.id, "index", 1)
    keys_before = store.keys_for_ids(kept.id, ["doc#0", "doc#1", "plain"])

    store.delete_collection(doomed.id)

    assert store.get_collection("doomed") is None
    assert [info.name for info in store.list_collections()] == ["kept"]
    assert store.count(doomed.id) == 0
    assert store.item_ids(doomed.id) == []
    assert store.get_items(doomed.id, ["doc#0", "plain"]) == {}
    assert store.document_ids(doomed.id) == []
    assert store.document(doomed.id, "doc") is None
    assert store.chunk_ids(doomed.id) == []
    assert store.chunk_records(doomed.id, ["doc#0", "doc#1"]) == {}
    assert store.index_state(doomed.id) is None
    assert store.log_position(doomed.id, "index") is None
    assert store.changes_since(doomed.id, 0)[1] == []
    assert store.keys_for_ids(doomed.id, ["doc#0", "plain"]) == {}

    # The other collection is untouched.
    assert store.count(kept.id) == 3
    assert sorted(store.chunk_ids(kept.id)) == ["doc#0", "doc#1"]
    assert store.document(kept.id, "doc") is not None
    assert store.index_state(kept.id).file == "kept.idx"
    assert store.log_position(kept.id, "index") == 1
    assert store.keys_for_ids(kept.id, ["doc#0", "doc#1", "plain"]) == keys_before

    # The name can be used again, and the new collection starts empty.
    again = store.create_collection("doomed", "m2", 2)
    assert store.count(again.id) == 0
    assert store.document_ids(again.id) == [] and store.chunk_ids(again.id) == []
    assert store.index_state(again.id) is None
    assert store.log_position(again.id, "index") is None


def test_ensure_collection_creates_once_inside_a_transaction(store):
    with store.transaction() as tx:
        created = store.ensure_collection(tx, "new", "model-a", None, "dot")
        assert store.get_collection("new", tx) == created
    assert (created.name, created.model, created.dimensions, created.distance) == (
        "new",
        "model-a",
        None,
        "dot",
    )
    with store.transaction() as tx:
        again = store.ensure_collection(tx, "new", "model-b", 3)
    assert again == created  # the existing record, untouched: the caller compares models
    with pytest.raises(vibes.VibesError, match="already exists"):
        store.create_collection("new", "model-a", None)


def test_a_collection_created_in_a_rolled_back_transaction_is_gone(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            store.ensure_collection(tx, "doomed", "m", DIMS)
            raise RuntimeError("the first batch failed")
    assert store.get_collection("doomed") is None
    assert [info.name for info in store.list_collections()] == []


# -- items ---------------------------------------------------------------------------------------


def test_items_round_trip(store, cid):
    metadata = {
        "title": "Ünïcödé 日本",
        "nested": {"list": [1, 2.5, "x", None], "deep": {"flag": False}},
        "n": None,
        "t": True,
    }
    vectors = {
        "text": np.array([1e-38, -0.0, 3.4e38, -1.2345678], dtype=np.float32),
        "blob": vector(1),
        "bare": vector(2),
    }
    put(
        store,
        cid,
        [
            item("text", content="hello", metadata=metadata, vec=vectors["text"]),
            item("blob", blob=b"\x00\xffbinary", vec=vectors["blob"]),
            item("bare", vec=vectors["bare"]),
        ],
    )
    got = store.get_items(cid, ["text", "blob", "bare", "missing"])
    assert set(got) == {"text", "blob", "bare"}
    assert got["text"] == StoredItem("text", digest("hello"), "hello", None, metadata)
    assert got["blob"] == StoredItem(
        "blob", hashlib.md5(b"\x00\xffbinary").digest(), None, b"\x00\xffbinary", None
    )
    assert got["bare"].metadata is None
    for item_id, expected in vectors.items():
        stored = store.get_vector(cid, item_id)
        assert stored.dtype == np.float32
        assert stored.tobytes() == expected.tobytes()  # bit for bit, -0.0 included
    assert store.get_vector(cid, "missing") is None
    assert store.get_items(cid, []) == {}
    assert sorted(store.item_ids(cid)) == ["bare", "blob", "text"]
    assert store.count(cid) == 3


def test_upsert_replaces_and_none_metadata_keeps(store, cid):
    put(store, cid, [item("a", 1, content="one", metadata={"k": 1, "old": True})])
    put(store, cid, [item("a", 2, content="two", metadata=None)])
    got = store.get_items(cid, ["a"])["a"]
    assert got.content == "two"
    assert got.content_hash == digest("two")
    assert got.metadata == {"k": 1, "old": True}
    assert np.array_equal(store.get_vector(cid, "a"), vector(2))
    # New metadata replaces the stored one; it is not merged into it.
    put(store, cid, [item("a", 3, metadata={"k": 2})])
    assert store.get_items(cid, ["a"])["a"].metadata == {"k": 2}
    assert store.count(cid) == 1


def test_update_stored_keeps_vector_and_none_fields(store, cid):
    put(store, cid, [item("a", 1, content="first", metadata={"k": 1})])
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("a", None, None, {"k": 2}, NOW + 1)])
    got = store.get_items(cid, ["a"])["a"]
    assert (got.content, got.metadata) == ("first", {"k": 2})
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("a", "second", None, None, NOW + 2)])
    got = store.get_items(cid, ["a"])["a"]
    assert (got.content, got.metadata) == ("second", {"k": 2})
    assert got.content_hash == digest("first")  # update_stored does not touch the hash
    assert np.array_equal(store.get_vector(cid, "a"), vector(1))
    # An update for an item that does not exist creates nothing.
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("ghost", "boo", None, {"x": 1}, NOW)])
    assert store.get_items(cid, ["ghost"]) == {}
    assert store.count(cid) == 1


def test_vectors_by_hash(store, cid):
    put(store, cid, [item("a", 1, content="same"), item("b", 1, content="same"), item("c", 2)])
    found = store.vectors_by_hash(cid, [digest("same"), digest("content of c"), digest("nope")])
    assert set(found) == {digest("same"), digest("content of c")}
    assert np.array_equal(found[digest("same")], vector(1))
    assert np.array_equal(found[digest("content of c")], vector(2))
    assert store.vectors_by_hash(cid, []) == {}
    other = store.create_collection("other", "m", DIMS)
    assert store.vectors_by_hash(other.id, [digest("same")]) == {}


def test_delete_items_counts_only_existing(store, cid):
    put(store, cid, [item(name) for name in "abcd"])
    assert delete(store, cid, ["a", "c", "missing"]) == 2
    assert delete(store, cid, []) == 0
    assert sorted(store.item_ids(cid)) == ["b", "d"]
    assert store.get_items(cid, ["a", "b"]).keys() == {"b"}


def test_items_are_scoped_to_their_collection(store, cid):
    other = store.create_collection("other", "m", DIMS).id
    put(store, cid, [item("a", 1)])
    put(store, other, [item("a", 2), item("b", 3)])
    assert np.array_equal(store.get_vector(cid, "a"), vector(1))
    assert np.array_equal(store.get_vector(other, "a"), vector(2))
    assert delete(store, other, ["a"]) == 1
    assert store.item_ids(cid) == ["a"]


def test_more_ids_than_one_statement_can_bind(store, cid):
    check_many_ids(store, cid)


def check_many_ids(store: Store, cid: int) -> None:
    """Reads and deletes by 2,500 ids at once: a backend must split long IN lists."""
    total = 2_500
    ids = [f"item-{i:05d}" for i in range(total)]
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((total, DIMS)).astype(np.float32)
    put(store, cid, [item(i, vec=row) for i, row in zip(ids, matrix)])
    expected = dict(zip(ids, matrix))
    wanted = ids[::-1] + ["missing-1", "missing-2"]

    got = store.get_items(cid, wanted)
    assert len(got) == total and set(got) == set(ids)

    loaded = store.load_matrix(cid, DIMS, ids=wanted)
    assert loaded.vectors.shape == (total, DIMS) and sorted(loaded.ids) == ids
    for row, item_id in enumerate(loaded.ids):
        assert np.array_equal(loaded.vectors[row], expected[item_id])

    keys = store.keys_for_ids(cid, wanted)
    assert set(keys) == set(ids) and len(set(keys.values())) == total
    assert store.ids_for_keys(list(keys.values())) == {key: i for i, key in keys.items()}

    hashes = store.vectors_by_hash(cid, [digest(f"content of {i}") for i in ids])
    assert len(hashes) == total

    with store.transaction() as tx:
        store.upsert_chunks(
            tx,
            cid,
            [ChunkRecord(i, "big", n, None, None, None, None, None) for n, i in enumerate(ids)],
        )
    assert len(store.chunk_records(cid, wanted)) == total

    assert delete(store, cid, ids[:2_000] + ["missing"]) == 2_000
    assert store.count(cid) == total - 2_000
    assert sorted(store.item_ids(cid)) == ids[2_000:]


# -- transactions --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_transaction_rolls_back_everything(store, cid, error):
    put(store, cid, [item("kept", 1, metadata={"v": 1})])
    with store.transaction() as tx:
        store.upsert_chunks(tx, cid, [ChunkRecord("kept", "doc", 0, 0, 5, 1, 1, None)])
        store.finish_document(tx, cid, DocumentRecord("doc", None, "lines", None, None, 1, 1))
    version, last = store.version(), store.last_change(cid)
    items_before = store.get_items(cid, ["kept"])

    with pytest.raises(type(error)):
        with store.transaction() as tx:
            store.upsert(tx, cid, [item("new", 2), item("kept", 3, metadata={"v": 2})])
            store.update_stored(tx, cid, [ItemUpdate("kept", "changed", None, {"v": 3}, NOW)])
            store.set_dimensions(tx, cid, 99)
            store.save_index_state(
                tx, IndexState(cid, "hnsw", "f.idx", 1, 1, DIMS, "m", "cosine", None, 1), None
            )
            store.advance_log(tx, cid, "index", last)
            store.ensure_keys(tx, cid)
            store.delete_documents(tx, cid, ["doc"])
            raise error

    assert store.count(cid) == 1
    assert store.get_items(cid, ["kept", "new"]) == items_before
    assert np.array_equal(store.get_vector(cid, "kept"), vector(1))
    assert store.get_collection("docs").dimensions == DIMS
    assert store.index_state(cid) is None
    assert store.log_position(cid, "index") is None
    assert store.document(cid, "doc") is not None
    assert store.chunk_ids(cid) == ["kept"]
    assert store.last_change(cid) == last
    assert store.changes_since(cid, last) == (last, [])
    assert store.version() == version
    # The store is still usable, from this thread and from another one.
    put(store, cid, [item("after", 4)])
    write_from_another_thread(store, cid, "from-thread")
    assert sorted(store.item_ids(cid)) == ["after", "from-thread", "kept"]


def test_transactions_commit_independently(store, cid):
    put(store, cid, [item("first")])
    put(store, cid, [item("second")])
    with pytest.raises(ValueError):
        with store.transaction() as tx:
            store.delete_items(tx, cid, ["first", "second"])
            raise ValueError
    assert sorted(store.item_ids(cid)) == ["first", "second"]


# -- load_matrix ---------------------------------------------------------------------------------


def test_load_matrix_rows_belong_to_their_ids(store, cid):
    ids = [f"id-{i}" for i in range(20)]
    put(store, cid, [item(i) for i in ids])
    whole = store.load_matrix(cid, DIMS)
    assert whole.vectors.shape == (20, DIMS) and whole.vectors.dtype == np.float32
    assert len(whole) == 20 and sorted(whole.ids) == sorted(ids)
    assert whole.keys is None
    for row, item_id in enumerate(whole.ids):
        assert np.array_equal(whole.vectors[row], store.get_vector(cid, item_id))

    wanted = ["id-7", "id-3", "nope", "id-15"]
    some = store.load_matrix(cid, DIMS, ids=wanted)
    assert sorted(some.ids) == ["id-15", "id-3", "id-7"]
    assert some.vectors.shape == (3, DIMS)
    for row, item_id in enumerate(some.ids):
        assert np.array_equal(some.vectors[row], store.get_vector(cid, item_id))

    inferred = store.load_matrix(cid, None)
    assert inferred.vectors.shape == (20, DIMS)


def test_load_matrix_with_keys(store, cid):
    put(store, cid, [item(f"id-{i}") for i in range(12)])
    with store.transaction() as tx:
        store.ensure_keys(tx, cid)
    loaded = store.load_matrix(cid, DIMS, with_keys=True)
    assert loaded.keys is not None and len(loaded.keys) == 12
    assert np.issubdtype(loaded.keys.dtype, np.integer)
    assert len(set(loaded.keys.tolist())) == 12
    expected = store.keys_for_ids(cid, loaded.ids)
    assert [int(key) for key in loaded.keys] == [expected[i] for i in loaded.ids]
    subset = store.load_matrix(cid, DIMS, ids=["id-1", "id-2"], with_keys=True)
    assert [int(key) for key in subset.keys] == [expected[i] for i in subset.ids]


def test_load_matrix_empty_collection(store, cid):
    empty = store.load_matrix(cid, DIMS)
    assert empty.ids == [] and empty.vectors.shape == (0, DIMS)
    assert empty.vectors.dtype == np.float32
    assert store.load_matrix(cid, DIMS, with_keys=True).vectors.shape == (0, DIMS)
    put(store, cid, [item("a")])
    assert store.load_matrix(cid, DIMS, ids=[]).vectors.shape == (0, DIMS)
    assert store.load_matrix(cid, DIMS, ids=["missing"]).vectors.shape == (0, DIMS)


def test_load_matrix_other_length_raises(store, cid):
    put(store, cid, [item("a", 1), item("b", 2), item("short", dims=DIMS - 1)])
    with pytest.raises(vibes.DimensionMismatchError):
        store.load_matrix(cid, DIMS)
    with pytest.raises(vibes.DimensionMismatchError):
        store.load_matrix(cid, DIMS, ids=["a", "short"])
    with pytest.raises(vibes.DimensionMismatchError):
        store.load_matrix(cid, None)
    assert store.load_matrix(cid, DIMS, ids=["a", "b"]).vectors.shape == (2, DIMS)


# -- iter_items ----------------------------------------------------------------------------------


def test_iter_items_pages_cover_every_item_once(store, cid):
    ids = [f"item-{i:03d}" for i in range(50)]
    put(store, cid, [item(i, metadata={"n": n}) for n, i in enumerate(reversed(ids))])
    pages = list(store.iter_items(cid, with_vectors=True, page_size=7))
    assert [len(items) for items, _ in pages] == [7] * 7 + [1]
    seen = [stored.id for items, _ in pages for stored in items]
    assert seen == sorted(ids)
    for items, vectors in pages:
        assert vectors.dtype == np.float32 and vectors.shape == (len(items), DIMS)
        for row, stored in enumerate(items):
            assert np.array_equal(vectors[row], store.get_vector(cid, stored.id))
            assert stored.content == f"content of {stored.id}"
            assert stored.metadata == {"n": 49 - ids.index(stored.id)}
    for _items, vectors in store.iter_items(cid, page_size=20):
        assert vectors is None
    assert list(store.iter_items(store.create_collection("empty", "m", DIMS).id)) == []


def test_iter_items_survives_writes_between_pages(store, cid):
    ids = [f"item-{i:03d}" for i in range(50)]
    put(store, cid, [item(i) for i in ids])
    seen: list[str] = []
    for page, (items, _) in enumerate(store.iter_items(cid, with_vectors=True, page_size=7)):
        seen.extend(stored.id for stored in items)
        if page == 1:
            put(store, cid, [item("aaa-before"), item("zzz-after"), item("item-030", 99)])
            assert delete(store, cid, ["item-040"]) == 1
            with store.transaction() as tx:
                store.update_stored(tx, cid, [ItemUpdate("item-045", "new", None, None, NOW)])
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    expected = set(ids) - {"item-040"}
    assert expected <= set(seen)
    assert "item-040" not in seen and "aaa-before" not in seen


# -- matching ------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(store, cid) -> int:
    put(
        store,
        cid,
        [
            item(
                "a",
                content="an apple",
                metadata={
                    "year": 2021,
                    "genre": "jazz",
                    "rating": 4.5,
                    "tags": {"mood": "calm"},
                    "live": True,
                    "note": None,
                },
            ),
            item(
                "b", content="a banana", metadata={"year": "2019", "genre": "rock", "live": False}
            ),
            item("c", content="apple pie", metadata={"year": "2021", "genre": "Jazz"}),
            item("d", content="no metadata"),
            item(
                "e", content="e", metadata={"year": "n/a", "genre": "pop", "tags": {"mood": "loud"}}
            ),
        ],
    )
    return cid


def test_compare_equals_and_not_equals(store, catalogue):
    assert matching_ids(store, catalogue, Compare(("genre",), "=", "jazz")) == {"a"}
    # Numbers match the same number stored as text (CSV metadata is all text).
    assert matching_ids(store, catalogue, Compare(("year",), "=", 2021)) == {"a", "c"}
    # != is the negation of =: items without the key match it.
    assert matching_ids(store, catalogue, Compare(("year",), "!=", 2021)) == {"b", "d", "e"}
    assert matching_ids(store, catalogue, Compare(("genre",), "!=", "jazz")) == {"b", "c", "d", "e"}


def test_compare_ordering(store, catalogue):
    assert matching_ids(store, catalogue, Compare(("year",), "<", 2021)) == {"b"}
    assert matching_ids(store, catalogue, Compare(("year",), ">=", 2020)) == {"a", "c"}
    assert matching_ids(store, catalogue, Compare(("year",), "<=", 2021)) == {"a", "b", "c"}
    assert matching_ids(store, catalogue, Compare(("year",), ">", 2021)) == set()
    assert matching_ids(store, catalogue, Compare(("rating",), ">", 4)) == {"a"}
    # With text, text compares with text.
    assert matching_ids(store, catalogue, Compare(("genre",), "<", "p")) == {"a", "c"}
    assert matching_ids(store, catalogue, Compare(("genre",), ">=", "pop")) == {"b", "e"}


def test_number_stored_as_text_matches_numeric_filters(store, cid):
    put(
        store,
        cid,
        [
            item("text-2021", metadata={"year": "2021"}),
            item("text-price", metadata={"price": "3.50"}),
            item("real-price", metadata={"price": 3.5}),
            item("text-2019", metadata={"year": "2019"}),
        ],
    )
    assert matching_ids(store, cid, *build_filter("year>=2020").conditions) == {"text-2021"}
    assert matching_ids(store, cid, *build_filter(["year<2020"]).conditions) == {"text-2019"}
    both = {"text-price", "real-price"}
    assert matching_ids(store, cid, Compare(("price",), ">=", 3.5)) == both
    assert matching_ids(store, cid, Compare(("price",), "<=", 3.5)) == both
    # "3.50" is the number 3.5 stored as text: = must agree with <= and >=.
    assert matching_ids(store, cid, Compare(("price",), "=", 3.5)) == both
    assert matching_ids(store, cid, OneOf(("price",), (3.5,))) == both


def test_text_that_is_not_a_number_never_matches_numeric_filters(store, cid):
    put(
        store,
        cid,
        [
            item("number", metadata={"v": "2021"}),
            item("date", metadata={"v": "2021-05-01"}),
            item("range", metadata={"v": "1-2"}),
            item("word", metadata={"v": "e5"}),
        ],
    )
    assert matching_ids(store, cid, Compare(("v",), ">=", 2020)) == {"number"}
    assert matching_ids(store, cid, Compare(("v",), "<", 5)) == set()


def test_one_of_nested_booleans_and_null(store, catalogue):
    assert matching_ids(store, catalogue, OneOf(("genre",), ("jazz", "rock"))) == {"a", "b"}
    assert matching_ids(store, catalogue, OneOf(("year",), (2019, 1999))) == {"b"}
    assert matching_ids(store, catalogue, Compare(("tags", "mood"), "=", "calm")) == {"a"}
    assert matching_ids(store, catalogue, Compare(("tags", "mood"), "!=", "calm")) == {
        "b",
        "c",
        "d",
        "e",
    }
    assert matching_ids(store, catalogue, Compare(("live",), "=", True)) == {"a"}
    assert matching_ids(store, catalogue, Compare(("live",), "=", False)) == {"b"}
    assert matching_ids(store, catalogue, Compare(("live",), "!=", True)) == {"b", "c", "d", "e"}
    # null matches an explicit null only, not a missing key.
    assert matching_ids(store, catalogue, Compare(("note",), "=", None)) == {"a"}
    parsed = build_filter({"tags.mood": "loud"}).conditions
    assert matching_ids(store, catalogue, *parsed) == {"e"}


def test_conditions_combine_and_empty_filter_matches_all(store, catalogue):
    assert matching_ids(store, catalogue) == {"a", "b", "c", "d", "e"}
    assert matching_ids(
        store, catalogue, Compare(("genre",), "=", "jazz"), Compare(("year",), ">=", 2020)
    ) == {"a"}
    assert matching_ids(
        store, catalogue, *build_filter(["year>=2019", "live=false"]).conditions
    ) == {"b"}


def test_id_prefix_is_literal(store, cid):
    ids = ["a_1", "ab1", "a%1", "a%b", "abc", "xa_1", "A_1", "a_"]
    put(store, cid, [item(i) for i in ids])
    assert matching_ids(store, cid, IdPrefix("a_")) == {"a_1", "a_"}
    assert matching_ids(store, cid, IdPrefix("a%")) == {"a%1", "a%b"}
    assert matching_ids(store, cid, IdPrefix("ab")) == {"ab1", "abc"}
    assert matching_ids(store, cid, IdPrefix("a_1")) == {"a_1"}
    assert matching_ids(store, cid, *build_filter(prefix="a%").conditions) == {"a%1", "a%b"}


def test_candidates_carry_keys(store, catalogue):
    with store.transaction() as tx:
        store.ensure_keys(tx, catalogue)
    candidates = store.matching(catalogue, Filter((Compare(("year",), "=", 2021),)))
    assert len(candidates) == len(candidates.ids) == len(candidates.keys) == 2
    keys = store.keys_for_ids(catalogue, candidates.ids)
    assert candidates.keys == [keys[i] for i in candidates.ids]


def test_matching_among_keys_checks_those_items_only(store, catalogue):
    with store.transaction() as tx:
        store.ensure_keys(tx, catalogue)
    keys = store.keys_for_ids(catalogue, ["a", "b", "c", "d"])
    recent = Filter((Compare(("year",), "=", 2021),))
    among = store.matching(catalogue, recent, [keys["a"], keys["b"], keys["d"]])
    assert (among.ids, among.keys) == (["a"], [keys["a"]])
    # "c" passes too, but is not among the keys asked about.
    assert "c" in store.matching(catalogue, recent).ids
    # Items without metadata pass != here too.
    not_jazz = Filter((Compare(("genre",), "!=", "jazz"),))
    assert set(store.matching(catalogue, not_jazz, [keys["a"], keys["d"]]).ids) == {"d"}
    assert store.matching(catalogue, recent, []).ids == []
    with pytest.raises(vibes.FilterError):
        store.matching(catalogue, Filter((Compare(("year",), "~", 1),)), [keys["a"]])


@pytest.mark.parametrize("store", SQLITE_BACKENDS, indirect=True)
def test_sqlite_raw_condition_with_braces_among_keys(store, catalogue):
    with store.transaction() as tx:
        store.ensure_keys(tx, catalogue)
    keys = store.keys_for_ids(catalogue, ["a", "b"])
    braces = Filter((RawSQL("content != '{marks}' AND id = ?", ("b",)),))
    assert store.matching(catalogue, braces, list(keys.values())).ids == ["b"]


def test_unsupported_conditions_raise_filter_error(store, catalogue):
    with pytest.raises(vibes.FilterError):
        store.matching(catalogue, Filter((RawSQL("1 = 1", dialect="no-such-dialect"),)))
    with pytest.raises(vibes.FilterError):
        store.matching(catalogue, Filter((Compare(("year",), "~", 1),)))


# -- chunked documents ---------------------------------------------------------------------------


def chunk(document_id: str, index: int) -> ChunkRecord:
    return ChunkRecord(
        f"{document_id}#{index}",
        document_id,
        index,
        start_offset=index * 10,
        end_offset=index * 10 + 9,
        start_line=index + 1,
        end_line=index + 1,
        context=f"ctx {index}" if index % 2 else None,
    )


def write_document(store: Store, cid: int, document_id: str, count: int, **fields: Any) -> int:
    record = DocumentRecord(
        document_id,
        fields.get("content_hash", digest(document_id)),
        fields.get("chunker", "lines"),
        fields.get("settings", '{"size":1}'),
        fields.get("metadata"),
        1,
        count,
    )
    order = list(range(count))[::-1]  # written out of order on purpose
    with store.transaction() as tx:
        store.upsert(tx, cid, [item(f"{document_id}#{i}", content=f"line {i}") for i in order])
        store.upsert_chunks(tx, cid, [chunk(document_id, i) for i in order])
        return store.finish_document(tx, cid, record)


def test_documents_and_chunks(store, cid):
    put(store, cid, [item("plain")])
    assert write_document(store, cid, "doc", 5, metadata={"path": "a.txt"}) == 0
    assert write_document(store, cid, "other", 2) == 0

    record = store.document(cid, "doc")
    assert record == DocumentRecord(
        "doc", digest("doc"), "lines", '{"size":1}', {"path": "a.txt"}, 1, 5
    )
    assert store.document(cid, "missing") is None
    assert sorted(store.document_ids(cid)) == ["doc", "other"]
    doc_ids = [f"doc#{i}" for i in range(5)]
    assert sorted(store.chunk_ids(cid)) == sorted(doc_ids + ["other#0", "other#1"])

    records = store.chunk_records(cid, doc_ids + ["plain", "missing"])
    assert records == {f"doc#{i}": chunk("doc", i) for i in range(5)}

    texts = store.document_chunks(cid, "doc", 1, 3)
    assert texts == [ChunkText(f"doc#{i}", i, i + 1, i + 1, f"line {i}") for i in (1, 2, 3)]
    assert [t.index for t in store.document_chunks(cid, "doc", 0, 100)] == [0, 1, 2, 3, 4]
    assert store.document_chunks(cid, "doc", 7, 9) == []
    assert store.document_chunks(cid, "missing", 0, 3) == []


def test_shorter_document_deletes_stale_chunks(store, cid):
    write_document(store, cid, "doc", 5)
    write_document(store, cid, "other", 3)
    version = store.version()
    assert write_document(store, cid, "doc", 2) == 3
    assert store.document(cid, "doc").chunk_count == 2
    assert sorted(store.chunk_ids(cid)) == ["doc#0", "doc#1", "other#0", "other#1", "other#2"]
    assert store.get_items(cid, [f"doc#{i}" for i in range(5)]).keys() == {"doc#0", "doc#1"}
    assert store.count(cid) == 5
    assert [t.id for t in store.document_chunks(cid, "doc", 0, 10)] == ["doc#0", "doc#1"]
    assert store.version() != version
    # Same length again: nothing is stale.
    assert write_document(store, cid, "doc", 2) == 0


def test_delete_documents_and_chunk_items(store, cid):
    put(store, cid, [item("plain")])
    write_document(store, cid, "doc", 3)
    write_document(store, cid, "other", 2)
    with store.transaction() as tx:
        assert store.delete_documents(tx, cid, ["doc", "missing"]) == 3
    assert store.document(cid, "doc") is None
    assert store.document_ids(cid) == ["other"]
    assert sorted(store.item_ids(cid)) == ["other#0", "other#1", "plain"]
    assert store.chunk_records(cid, ["doc#0", "doc#1", "doc#2"]) == {}
    # Deleting a chunk as an item removes its chunk record too.
    assert delete(store, cid, ["other#1"]) == 1
    assert store.chunk_records(cid, ["other#0", "other#1"]).keys() == {"other#0"}
    assert store.chunk_ids(cid) == ["other#0"]


def test_present_chunks_counts_rows_still_there(store, cid):
    write_document(store, cid, "doc", 4)
    assert store.present_chunks(cid, "doc") == 4
    assert store.present_chunks(cid, "missing") == 0
    # A chunk row deleted behind the store's back (by llm, say) leaves its record.
    with store.transaction() as tx:
        store.delete_items(tx, cid, ["doc#2"])
    assert store.present_chunks(cid, "doc") == 3


# -- sources -------------------------------------------------------------------------------------


def test_sources_are_recorded_changed_and_forgotten(store, cid):
    put(store, cid, [item("a"), item("b"), item("c")])
    write_document(store, cid, "doc", 2)
    with store.transaction() as tx:
        store.set_sources(tx, cid, {"a": "files:x", "b": "files:x", "doc": "files:x", "c": None})
    assert store.sources(cid, ["a", "b", "c", "doc", "missing"]) == {
        "a": "files:x",
        "b": "files:x",
        "doc": "files:x",
    }
    assert sorted(store.sourced_ids(cid, "files:x")) == ["a", "b", "doc"]
    assert store.sourced_ids(cid, "files:y") == []
    with store.transaction() as tx:
        store.set_sources(tx, cid, {"a": "files:y", "b": None})
    assert store.sources(cid, ["a", "b"]) == {"a": "files:y"}
    # Deleting an item or a document forgets its source.
    delete(store, cid, ["a"])
    with store.transaction() as tx:
        store.delete_documents(tx, cid, ["doc"])
    assert store.sourced_ids(cid, "files:y") == []
    assert store.sourced_ids(cid, "files:x") == []


def test_sources_are_per_collection(store, cid):
    other = store.create_collection("other", "m", DIMS).id
    put(store, cid, [item("a")])
    put(store, other, [item("a")])
    with store.transaction() as tx:
        store.set_sources(tx, cid, {"a": "s"})
    assert store.sources(other, ["a"]) == {}
    store.delete_collection(cid)
    assert store.sourced_ids(cid, "s") == []


# -- change log and version ----------------------------------------------------------------------


def test_last_change_and_changes_since(store, cid):
    assert store.last_change(cid) == 0
    assert store.changes_since(cid, 0) == (0, [])
    put(store, cid, [item("a"), item("b")])
    first = store.last_change(cid)
    assert first > 0
    put(store, cid, [item("c"), item("b", 5)])
    put(store, cid, [item("b", 6)])
    second = store.last_change(cid)
    assert second > first
    assert delete(store, cid, ["a"]) == 1
    third = store.last_change(cid)
    assert third > second

    newest, changed = store.changes_since(cid, first)
    assert newest == third
    assert sorted(changed) == ["a", "b", "c"] and len(changed) == 3  # distinct
    assert store.changes_since(cid, second) == (third, ["a"])
    assert store.changes_since(cid, third) == (third, [])
    # Another collection's changes are its own.
    other = store.create_collection("other", "m", DIMS).id
    put(store, other, [item("x")])
    assert store.changes_since(cid, third) == (third, [])
    assert store.changes_since(other, 0)[1] == ["x"]


def test_log_positions_prune_below_the_lowest_consumer(store, cid):
    other = store.create_collection("other", "m", DIMS).id
    put(store, other, [item("other-1")])
    seqs = []
    for n in range(6):
        put(store, cid, [item(f"change-{n}")])
        seqs.append(store.last_change(cid))
    assert seqs == sorted(set(seqs))

    with store.transaction() as tx:
        store.advance_log(tx, cid, "fts", seqs[1])
        store.advance_log(tx, cid, "index", seqs[3])
    assert store.log_position(cid, "index") == seqs[3]
    assert store.log_position(cid, "fts") == seqs[1]
    assert store.log_position(cid, "nobody") is None
    assert store.log_position(other, "index") is None
    # Pruned up to the lower position, and only that far.
    assert store.changes_since(cid, seqs[1]) == (seqs[5], [f"change-{n}" for n in range(2, 6)])
    assert store.changes_since(cid, 0)[1] == [f"change-{n}" for n in range(2, 6)]
    assert store.changes_since(cid, seqs[3]) == (seqs[5], ["change-4", "change-5"])

    with store.transaction() as tx:
        store.release_log(tx, cid, "fts")
    assert store.log_position(cid, "fts") is None
    assert store.log_position(cid, "index") == seqs[3]
    assert store.changes_since(cid, 0)[1] == ["change-4", "change-5"]

    with store.transaction() as tx:
        store.release_log(tx, cid, "index")
    assert store.changes_since(cid, 0)[1] == []
    # The other collection's log was never touched.
    assert store.changes_since(other, 0)[1] == ["other-1"]


def test_prune_log_without_consumers_empties_the_log(store, cid):
    other = store.create_collection("other", "m", DIMS).id
    put(store, cid, [item("a"), item("b")])
    put(store, other, [item("x")])
    with store.transaction() as tx:
        store.prune_log(tx, cid)
    assert store.changes_since(cid, 0)[1] == []
    assert store.changes_since(other, 0)[1] == ["x"]
    # Pruning does not make change numbers go back.
    before = store.version()
    put(store, cid, [item("c")])
    newest, changed = store.changes_since(cid, 0)
    assert changed == ["c"] and store.last_change(cid) == newest
    assert store.version() != before


def test_prune_log_keeps_what_a_consumer_still_needs(store, cid):
    put(store, cid, [item("a")])
    position = store.last_change(cid)
    with store.transaction() as tx:
        store.advance_log(tx, cid, "index", position)
    put(store, cid, [item("b")])
    with store.transaction() as tx:
        store.prune_log(tx, cid)
    assert store.changes_since(cid, position)[1] == ["b"]


def test_version_follows_writes_of_vectors_and_texts_only(store, cid):
    versions = [store.version()]

    def changed() -> None:
        versions.append(store.version())
        assert versions[-1] != versions[-2]

    def unchanged() -> None:
        assert store.version() == versions[-1]

    put(store, cid, [item("a", 1), item("b", 2)])
    changed()
    put(store, cid, [item("a", 3)])
    changed()
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("a", None, None, {"k": 1}, NOW)])
    unchanged()  # metadata alone
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("a", "text", None, None, NOW)])
    changed()  # a new text: the full-text index must see it
    with store.transaction() as tx:
        store.update_stored(tx, cid, [ItemUpdate("a", "text", None, None, NOW)])
    unchanged()  # the same text again
    store.get_items(cid, ["a", "b"])
    store.load_matrix(cid, DIMS)
    store.matching(cid, Filter((Compare(("k",), "=", 1),)))
    list(store.iter_items(cid, with_vectors=True))
    store.count(cid)
    store.list_collections()
    store.changes_since(cid, 0)
    unchanged()
    assert delete(store, cid, ["b"]) == 1
    changed()
    other = store.create_collection("other", "m", DIMS).id
    put(store, other, [item("x")])
    changed()
    store.delete_collection(other)
    changed()
    assert len(set(versions)) == len(versions)


# -- keys and index state ------------------------------------------------------------------------


def test_keys_round_trip_and_stay_stable(store, cid):
    ids = [f"k{i}" for i in range(10)]
    put(store, cid, [item(i) for i in ids])
    with store.transaction() as tx:
        store.ensure_keys(tx, cid)
        store.ensure_keys(tx, cid)  # idempotent
    keys = store.keys_for_ids(cid, ids + ["missing"])
    assert set(keys) == set(ids)
    assert all(isinstance(key, int) for key in keys.values())
    assert len(set(keys.values())) == len(ids)
    assert store.ids_for_keys(list(keys.values())) == {key: i for i, key in keys.items()}
    assert store.ids_for_keys([]) == {} and store.keys_for_ids(cid, []) == {}
    # Replacing an item keeps its key.
    put(store, cid, [item("k3", 42)])
    assert store.keys_for_ids(cid, ["k3"]) == {"k3": keys["k3"]}
    # Keys are unique across collections.
    other = store.create_collection("other", "m", DIMS).id
    put(store, other, [item("k0")])
    with store.transaction() as tx:
        store.ensure_keys(tx, other)
    other_key = store.keys_for_ids(other, ["k0"])["k0"]
    assert other_key not in keys.values()
    assert store.ids_for_keys([other_key, keys["k0"]]) == {other_key: "k0", keys["k0"]: "k0"}


def test_vectors_for_keys_reads_this_collections_items_in_one_go(store, cid):
    ids = [f"k{i}" for i in range(6)]
    put(store, cid, [item(i, seed) for seed, i in enumerate(ids)])
    other = store.create_collection("other", "m", DIMS).id
    put(store, other, [item("k0", 99)])
    with store.transaction() as tx:
        store.ensure_keys(tx, cid)
        store.ensure_keys(tx, other)
    keys = store.keys_for_ids(cid, ids)
    other_key = store.keys_for_ids(other, ["k0"])["k0"]
    unused = max([*keys.values(), other_key]) + 1000
    wanted = [keys["k4"], keys["k1"], other_key, unused]
    found = store.vectors_for_keys(cid, DIMS, wanted)
    assert sorted(found.ids) == ["k1", "k4"]  # another collection's key and no item's: left out
    assert found.vectors.shape == (2, DIMS) and found.vectors.dtype == np.float32
    by_id = store.load_matrix(cid, DIMS, ["k1", "k4"], with_keys=True)
    for item_id, vector, key in zip(found.ids, found.vectors, found.keys):
        assert key == keys[item_id]
        assert np.array_equal(vector, by_id.vectors[by_id.ids.index(item_id)])
    empty = store.vectors_for_keys(cid, DIMS, [])
    assert empty.ids == [] and empty.vectors.shape == (0, DIMS) and len(empty.keys) == 0


def test_index_state_compare_and_set(store, cid):
    assert store.index_state(cid) is None
    first = IndexState(cid, "hnsw", "one.idx", 5, 10, DIMS, "test-model", "cosine", '{"m":16}', NOW)
    second = IndexState(cid, "hnsw", "two.idx", 8, 12, DIMS, "test-model", "cosine", None, NOW + 1)
    with store.transaction() as tx:
        assert store.save_index_state(tx, first, None) is True
    assert store.index_state(cid) == first
    with store.transaction() as tx:
        assert store.save_index_state(tx, second, "wrong.idx") is False
        assert store.save_index_state(tx, second, None) is False
    assert store.index_state(cid) == first
    with store.transaction() as tx:
        assert store.save_index_state(tx, second, "one.idx") is True
    assert store.index_state(cid) == second
    dropped = IndexState(cid, "off", None, 0, None, None, None, None, None, None)
    with store.transaction() as tx:
        assert store.save_index_state(tx, dropped, "two.idx") is True
    assert store.index_state(cid) == dropped
    other = store.create_collection("other", "m", DIMS).id
    assert store.index_state(other) is None


# -- threads -------------------------------------------------------------------------------------


def test_concurrent_reads_and_writes(store, cid):
    put(store, cid, [item(f"seed-{i:03d}") for i in range(100)])
    readers, writers, reads, writes = 8, 2, 30, 40
    start = threading.Barrier(readers + writers)

    def read(worker: int) -> int:
        start.wait()
        counted = 0
        for n in range(reads):
            got = store.get_items(cid, [f"seed-{(worker * 7 + n) % 100:03d}", "missing"])
            assert len(got) == 1
            matrix = store.load_matrix(cid, DIMS)
            assert matrix.vectors.shape == (len(matrix.ids), DIMS)
            counted = store.count(cid)
            assert counted >= 100  # writers add more than they delete
        return counted

    def write(worker: int) -> int:
        start.wait()
        for n in range(writes):
            with store.transaction() as tx:
                store.upsert(tx, cid, [item(f"w{worker}-{n}-a"), item(f"w{worker}-{n}-b")])
                store.update_stored(tx, cid, [ItemUpdate("seed-000", None, None, {"n": n}, NOW)])
            if n % 10 == 9:
                with store.transaction() as tx:
                    assert store.delete_items(tx, cid, [f"w{worker}-{n}-b"]) == 1
        return writes

    with ThreadPoolExecutor(readers + writers) as pool:
        futures = [pool.submit(read, w) for w in range(readers)]
        futures += [pool.submit(write, w) for w in range(writers)]
        for future in futures:
            future.result(timeout=60)  # re-raises any thread's exception

    deleted = writers * (writes // 10)
    assert store.count(cid) == 100 + writers * writes * 2 - deleted
    assert len(store.load_matrix(cid, DIMS)) == store.count(cid)


# -- errors --------------------------------------------------------------------------------------


def test_duplicate_collection_is_a_vibes_error(store, cid):
    put(store, cid, [item("a")])
    with pytest.raises(vibes.VibesError) as raised:
        store.create_collection("docs", "other-model", 8)
    assert not isinstance(raised.value, sqlite3.Error)
    assert raised.value.args and "\n" not in str(raised.value)
    record = store.get_collection("docs")
    assert (record.id, record.model, record.dimensions) == (cid, "test-model", DIMS)
    assert store.count(cid) == 1
    write_from_another_thread(store, cid, "after-error")


def test_metadata_that_is_not_json_is_a_vibes_error(store, cid):
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    with pytest.raises(vibes.VibesError):
        put(store, cid, [item("a", metadata={"when": when})])
    assert store.count(cid) == 0


# -- analysis: clusterings and related items ------------------------------------------------------


def test_clustering_is_saved_replaced_and_dropped(store, cid):
    put(store, cid, [item("a"), item("b"), item("c")])
    assert store.clustering(cid) is None and store.cluster_assignments(cid) == {}
    clusters = [ClusterRecord(0, "alpha", None, 2), ClusterRecord(1, "beta", "B things", 1)]
    with store.transaction() as tx:
        store.save_clustering(tx, cid, '{"n": 2}', clusters, {"a": 0, "b": 0, "c": 1})
    found = store.clustering(cid)
    assert found is not None and found.settings == '{"n": 2}' and found.clusters == clusters
    assert store.cluster_assignments(cid) == {"a": 0, "b": 0, "c": 1}
    delete(store, cid, ["b"])  # an item that is gone has no cluster any more
    assert store.cluster_assignments(cid) == {"a": 0, "c": 1}
    with store.transaction() as tx:
        store.save_clustering(tx, cid, None, [ClusterRecord(0, None, None, 2)], {"a": 0, "c": 0})
    assert store.cluster_assignments(cid) == {"a": 0, "c": 0}
    assert [c.cluster for c in store.clustering(cid).clusters] == [0]
    with store.transaction() as tx:
        store.drop_clustering(tx, cid)
    assert store.clustering(cid) is None and store.cluster_assignments(cid) == {}


def test_related_items_are_written_read_and_replaced(store, cid):
    assert store.related_state(cid) is None
    with store.transaction() as tx:
        store.save_related_state(tx, RelatedState(cid, 2, False, NOW))
        store.write_related(
            tx, cid, {"a": [("b", 0.9), ("c", 0.5)], "b": [("a", 0.9), ("c", 0.7)], "c": []}
        )
    assert store.related_state(cid) == RelatedState(cid, 2, False, NOW)
    assert store.related(cid, ["a", "b", "c", "x"]) == {
        "a": [("b", 0.9), ("c", 0.5)],
        "b": [("a", 0.9), ("c", 0.7)],
    }
    assert store.related_at(cid, 1) == {"a": 0.5, "b": 0.7}
    assert store.related_at(cid, 0) == {"a": 0.9, "b": 0.9} and store.related_at(cid, 2) == {}
    assert store.related_pointing_to(cid, ["c"]) == {"a", "b"}
    assert store.related_pointing_to(cid, ["a", "nobody"]) == {"b"}
    with store.transaction() as tx:
        store.write_related(tx, cid, {"a": [("c", 0.95)]})  # replaces a's list whole
        store.delete_related(tx, cid, ["b"])
    assert store.related(cid, ["a", "b"]) == {"a": [("c", 0.95)]}
    with store.transaction() as tx:
        store.save_related_state(tx, RelatedState(cid, 5, True, NOW + 1))
    assert store.related_state(cid) == RelatedState(cid, 5, True, NOW + 1)
    with store.transaction() as tx:
        store.drop_related(tx, cid)
    assert store.related_state(cid) is None and store.related(cid, ["a"]) == {}


def test_deleting_a_collection_deletes_its_analysis(store, cid):
    put(store, cid, [item("a")])
    with store.transaction() as tx:
        store.save_clustering(tx, cid, None, [ClusterRecord(0, "x", None, 1)], {"a": 0})
        store.save_related_state(tx, RelatedState(cid, 1, False, NOW))
        store.write_related(tx, cid, {"a": [("a2", 0.5)]})
    store.delete_collection(cid)
    assert store.clustering(cid) is None and store.related_state(cid) is None
    assert store.related(cid, ["a"]) == {} and store.cluster_assignments(cid) == {}


# -- SQLite only: raw SQL conditions, read_query, writes behind the store's back -----------------


@pytest.mark.parametrize("store", SQLITE_BACKENDS, indirect=True)
def test_sqlite_raw_condition(store, catalogue):
    raw = RawSQL("content LIKE ?", ("%apple%",))
    assert matching_ids(store, catalogue, raw) == {"a", "c"}
    assert matching_ids(store, catalogue, raw, Compare(("genre",), "=", "jazz")) == {"a"}
    assert matching_ids(store, catalogue, *build_filter(where="id IN ('b', 'd')").conditions) == {
        "b",
        "d",
    }


@pytest.mark.parametrize("store", SQLITE_BACKENDS, indirect=True)
@pytest.mark.parametrize("sql", ["no_such_column = 1", "id = ) AND (", "id = ?"])
def test_sqlite_broken_raw_condition_is_a_filter_error(store, catalogue, sql):
    with pytest.raises(vibes.FilterError) as raised:
        store.matching(catalogue, Filter((RawSQL(sql),)))
    assert str(raised.value).startswith("Invalid filter")


@pytest.mark.parametrize("store", SQLITE_BACKENDS, indirect=True)
def test_sqlite_metadata_filters_read_the_metadata_index_not_the_table(store, catalogue):
    def plan(*conditions: Any) -> str:
        sql, params = store._matching_query(catalogue, Filter(tuple(conditions)))
        return " ".join(row[-1] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

    # Every comparison an item without metadata fails reads the index of id and metadata
    # alone (the table's rows hold vectors and text too: a million of them took 1.4 s).
    for conditions in (
        [Compare(("genre",), "=", "jazz")],
        [OneOf(("year",), (2019, 2021))],
        [Compare(("year",), ">=", 2020), IdPrefix("a")],
    ):
        assert "COVERING INDEX vibes_embeddings_metadata" in plan(*conditions)
    # != lets items without metadata through, so it must read the table: "d" has none.
    assert "vibes_embeddings_metadata" not in plan(Compare(("genre",), "!=", "jazz"))
    assert "d" in matching_ids(store, catalogue, Compare(("genre",), "!=", "jazz"))


def test_sqlite_metadata_index_is_optional_for_readers(tmp_path):
    """A database from before the metadata index opens read-only (filters read the table)
    and gains the index the next time it is opened to write."""
    import sqlite3

    store = BACKENDS["sqlite-file"](tmp_path)
    record = store.create_collection("docs", "m", DIMS)
    put(store, record.id, [item("a", metadata={"k": 1}), item("b", metadata={"k": 2})])
    store.close()
    conn = sqlite3.connect(tmp_path / "c.db")
    with conn:
        conn.execute('DROP INDEX "vibes_embeddings_metadata"')
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm009_metadata_index'")
    conn.close()
    reader = open_store(tmp_path / "c.db", readonly=True)
    assert matching_ids(reader, record.id, Compare(("k",), "=", 2)) == {"b"}
    reader.close()
    writer = open_store(tmp_path / "c.db")
    indexes = writer.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    assert "vibes_embeddings_metadata" in {row[0] for row in indexes}
    assert matching_ids(writer, record.id, Compare(("k",), "=", 2)) == {"b"}
    writer.close()


def test_sqlite_read_query(tmp_path):
    store = BACKENDS["sqlite-file"](tmp_path)
    try:
        record = store.create_collection("docs", "m", DIMS)
        put(store, record.id, [item(f"r{i}", content=f"row {i}") for i in range(3)])
        rows, count = store.read_query("SELECT id, content FROM embeddings ORDER BY id")
        first = next(rows)
        assert first == {"id": "r0", "content": "row 0"}
        # Rows stream on their own connection: the database can be written meanwhile.
        put(store, record.id, [item("r9")])
        rest = list(rows)
        assert [first, *rest][:3] == [{"id": f"r{i}", "content": f"row {i}"} for i in range(3)]
        assert count == 3

        other = tmp_path / "other.db"
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        conn.close()
        rows, count = store.read_query("SELECT x FROM o.t ORDER BY x", attach=[("o", str(other))])
        assert (list(rows), count) == ([{"x": 1}, {"x": 2}], 2)

        for bad in ("DELETE FROM embeddings", "CREATE TABLE x (a)", "SELEC nonsense"):
            with pytest.raises(vibes.InputError):
                store.read_query(bad)
        with pytest.raises(vibes.InputError):
            store.read_query("SELECT 1", attach=[("o", str(tmp_path / "missing.db"))])
        assert store.count(record.id) == 4
    finally:
        store.close()


def test_sqlite_memory_read_query_is_an_input_error(tmp_path):
    store = BACKENDS["sqlite-memory"](tmp_path)
    try:
        with pytest.raises(vibes.InputError):
            store.read_query("SELECT 1")
    finally:
        store.close()


@pytest.mark.parametrize("store", SQLITE_BACKENDS, indirect=True)
def test_sqlite_batches_in_lists_under_an_old_parameter_limit(store, cid):
    # Old SQLite builds bind at most 999 parameters a statement (modern ones 32766).
    set_limit = getattr(store.conn, "setlimit", None)  # Python 3.11+
    if set_limit is not None:
        set_limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    check_many_ids(store, cid)


def test_sqlite_version_sees_writes_behind_its_back(tmp_path):
    store = BACKENDS["sqlite-file"](tmp_path)
    try:
        record = store.create_collection("docs", "m", DIMS)
        put(store, record.id, [item("a")])
        version = store.version()
        # Another process (llm, plain SQL) writes the file directly.
        conn = sqlite3.connect(store.location, isolation_level=None)
        try:
            blob = vector(5).astype("<f4").tobytes()
            conn.execute(
                "INSERT INTO embeddings (collection_id, id, embedding) VALUES (?, 'b', ?)",
                (record.id, blob),
            )
            assert store.version() != version
            version = store.version()
            conn.execute("UPDATE embeddings SET embedding = ? WHERE id = 'a'", (blob,))
            assert store.version() != version
            version = store.version()
            conn.execute("UPDATE embeddings SET metadata = '{\"k\": 1}' WHERE id = 'a'")
            assert store.version() == version
            conn.execute("DELETE FROM embeddings WHERE id = 'b'")
            assert store.version() != version
        finally:
            conn.close()
        # A second store on the same file agrees.
        again = open_store(store.location)
        try:
            assert again.version() == store.version()
            assert np.array_equal(again.get_vector(record.id, "a"), vector(5))
        finally:
            again.close()
    finally:
        store.close()


def test_an_id_written_twice_in_one_batch_keeps_the_last(store, cid):
    put(store, cid, [item("a", 1, content="first"), item("b", 2), item("a", 3, content="last")])
    assert store.count(cid) == 2
    assert store.get_items(cid, ["a"])["a"].content == "last"
    assert np.array_equal(store.get_vector(cid, "a"), vector(3))

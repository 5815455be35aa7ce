"""`vibes collections copy` and `vibes.copy_collection`: a collection copied as stored,
between databases or under another name, kept in step by re-runs that write only what
changed.

Every database here comes from :func:`location`, the one place that knows the backend:
a PostgreSQL run joins by adding an entry to :data:`BACKENDS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checks import one_line_error

import vibes
from vibes.copying import copy_collection
from vibes.errors import (
    DatabaseOpenError,
    DimensionMismatchError,
    ModelMismatchError,
    UnknownCollectionError,
    VibesError,
)
from vibes.items import Item
from vibes.store import ItemWrite
from vibes.store.postgres import describe_url
from vibes.vectors import content_hash

#: Every backend the copy runs on: name -> (tmp_path, database name) -> path or URL.
BACKENDS: dict[str, Callable[[Path, str], str]] = {
    "sqlite": lambda tmp_path, name: str(tmp_path / f"{name}.db"),
}


@pytest.fixture(params=[*BACKENDS, "postgresql", "sqlite-to-postgresql"])
def location(request, tmp_path) -> Callable[[str], str]:
    """Where the database called ``name`` lives (it need not exist yet): SQLite files,
    PostgreSQL databases (a schema each on the test server), or the source in SQLite and
    every other database in PostgreSQL."""
    if request.param in BACKENDS:
        return lambda name: BACKENDS[request.param](tmp_path, name)
    make = request.getfixturevalue("pg_database")
    urls: dict[str, str] = {}

    def where(name: str) -> str:
        if request.param == "sqlite-to-postgresql" and name == "source":
            return str(tmp_path / f"{name}.db")
        if name not in urls:
            urls[name] = make()
        return urls[name]

    return where


@pytest.fixture
def database(location) -> Any:
    """Opens the database called ``name`` (created unless ``create=False``); all are
    closed after the test."""
    opened: list[vibes.Database] = []

    def open_database(name: str, **options: Any) -> vibes.Database:
        db = vibes.Database(location(name), **options)
        opened.append(db)
        return db

    yield open_database
    for db in opened:
        db.close()


DOCUMENT = "the dog ran on the beach today while the cat slept in the sun all day long"


def fill(db: vibes.Database, name: str = "docs") -> vibes.Collection:
    """A collection with something of everything: text with and without metadata, an
    item with a source, binary content, and two chunked documents (one with a source)."""
    docs = db.collection(name, model="hash")
    docs.embed_multi(
        [
            ("a1", "one", {"n": 1}),
            ("a2", "two words", None),
            Item("a3", "three, with a comma\n", {"nested": {"x": [1, 2]}}, source="dir:notes"),
        ],
        store=True,
    )
    docs.embed_multi([("a4", "four: kept without its text", {"kept": False})])  # no --store
    docs.embed("img", b"\x89PNG\r\n\x1a\n\x00binary bytes", {"kind": "image"}, store=True)
    docs.embed_multi(
        [
            Item("doc1", DOCUMENT, {"topic": "pets"}, source="files:docs"),
            Item("doc2", "sqlite backup tools and other database matters", None),
        ],
        store=True,
        chunk="words",
    )
    return docs


def snapshot(db: vibes.Database, name: str) -> dict[str, Any]:
    """Everything a copy must carry, read through the Store interface."""
    store = db.store
    record = store.get_collection(name)
    assert record is not None
    items: dict[str, Any] = {}
    for page, vectors in store.iter_items(record.id, with_vectors=True, page_size=3):
        assert vectors is not None
        for row, item in enumerate(page):
            assert vectors[row].dtype == np.float32
            items[item.id] = (
                item.content_hash,
                item.content,
                item.content_blob,
                item.metadata,
                vectors[row].tobytes(),  # bit for bit
            )
    documents = sorted(store.document_ids(record.id))
    return {
        "collection": (record.model, record.dimensions, record.distance),
        "items": items,
        "chunks": store.chunk_records(record.id, list(items)),
        "documents": {d: store.document(record.id, d) for d in documents},
        "sources": store.sources(record.id, list(items) + documents),
    }


def marks(db: vibes.Database, name: str) -> tuple[Any, int]:
    """What moves when anything is written to a collection's vectors."""
    record = db.store.get_collection(name)
    assert record is not None
    return db.store.version(), db.store.last_change(record.id)


@pytest.fixture
def filled(database, test_plugin) -> vibes.Database:
    source = database("source")
    fill(source)
    return source


# -- the Python API ----------------------------------------------------------------------


def test_copy_carries_everything_as_stored(filled, database):
    destination = database("copy")
    stats = copy_collection(filled, "docs", destination, batch_size=2)
    expected = snapshot(filled, "docs")
    assert stats.to_dict() == {
        "copied": len(expected["items"]),
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "documents": 2,
        "warnings": [],
    }
    assert snapshot(destination, "docs") == expected
    # What the snapshot holds is what was put in.
    items = expected["items"]
    assert items["img"][2] == b"\x89PNG\r\n\x1a\n\x00binary bytes" and items["img"][1] is None
    assert items["a3"][3] == {"nested": {"x": [1, 2]}}
    assert items["a4"][1] is None and items["a4"][0] == content_hash("four: kept without its text")
    assert expected["sources"] == {"a3": "dir:notes", "doc1": "files:docs"}
    assert expected["documents"]["doc1"].chunk_count == 6
    assert expected["chunks"]["doc1#2"].document_id == "doc1"

    copy = destination.collection("docs")
    # Chunked documents are searched as documents, with their chunks' text and context.
    original = filled.collection("docs")
    query = "dog on the beach"
    found = copy.search(query, 3, documents=True, context=1)
    assert [(d.id, d.score) for d in found] == [
        (d.id, d.score) for d in original.search(query, 3, documents=True, context=1)
    ]
    assert found[0].id == "doc1" and found[0].metadata == {"topic": "pets"}
    # The copy has a full-text index of its stored text.
    assert copy.fulltext_status()["state"] == "ready"
    assert [m.id for m in copy.search("backup", mode="text")] == ["doc2#1"]


def test_copy_needs_no_model(database):
    # A collection whose model is installed nowhere, made as llm makes them (no recorded
    # dimensions): its vectors are copied as they are.
    source = database("source")
    store = source.store
    vectors = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    with store.transaction() as tx:
        record = store.ensure_collection(tx, "far", "someone/not-installed", None, "dot")
        store.upsert(
            tx,
            record.id,
            [
                ItemWrite(f"i{n}", vectors[n], text, None, content_hash(text), None, 1)
                for n, text in enumerate(f"text {n}" for n in range(5))
            ],
        )
    destination = database("copy")
    stats = vibes.copy_collection(source, "far", destination)
    assert stats.copied == 5
    copied = destination.store.get_collection("far")
    assert copied is not None
    assert (copied.model, copied.dimensions, copied.distance) == ("someone/not-installed", 7, "dot")
    assert snapshot(destination, "far")["items"] == snapshot(source, "far")["items"]
    # Search by stored vectors needs no model either.
    hits = destination.collection("far").search(vectors[2], 1)
    assert hits[0].id == "i2"


def test_as_names_the_copy(filled, database):
    # Within one database...
    stats = copy_collection(filled, "docs", filled, new_name="docs-backup")
    assert stats.copied == len(snapshot(filled, "docs")["items"])
    assert snapshot(filled, "docs-backup") == snapshot(filled, "docs")
    # ...and into another one.
    other = database("other")
    copy_collection(filled, "docs", other, new_name="renamed")
    assert [c.name for c in other.collections()] == ["renamed"]
    assert snapshot(other, "renamed") == snapshot(filled, "docs")


def test_rerun_writes_nothing(filled, database, monkeypatch):
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "1")  # the copy gets an approximate index
    destination = database("copy")
    first = copy_collection(filled, "docs", destination, batch_size=2)
    copy = destination.collection("docs")
    index = copy.index_state()
    assert index is not None and index.size == first.copied
    before = marks(destination, "docs")
    again = copy_collection(filled, "docs", destination, batch_size=2)
    assert (again.copied, again.updated, again.deleted, again.documents) == (0, 0, 0, 0)
    assert again.unchanged == first.copied
    assert marks(destination, "docs") == before
    assert copy.index_state() == index
    # Nor does a copy read back the other way (nothing differs).
    reopened = database("copy")
    back = copy_collection(reopened, "docs", filled)
    assert back.unchanged == first.copied and marks(destination, "docs") == before


def test_changes_propagate_and_the_copy_mirrors_the_source(filled, database):
    destination = database("copy")
    copy_collection(filled, "docs", destination, batch_size=2)
    docs = filled.collection("docs")
    docs.embed("a1", "one, rewritten", {"n": 1}, store=True)  # new text and vector
    docs.embed("a2", "two words", {"now": "with metadata"}, store=True)  # metadata only
    docs.delete_items(["a3"])  # gone, with its source
    docs.embed_multi([Item("a3b", "new", None, source="dir:notes")], store=True)
    vector = np.linspace(-1, 1, 16).tolist()
    docs.embed_multi([Item("img", b"\x89PNG\r\n\x1a\n\x00binary bytes", None, vector=vector)])
    docs.embed_multi(
        [Item("doc1", "the dog ran home", {"topic": "pets"}, source="files:elsewhere")],
        store=True,
        chunk="words",
    )  # 6 chunks become 2: the copy loses 4, and the document's source changes
    docs.delete_items(["doc2"])
    stats = copy_collection(filled, "docs", destination, batch_size=2)
    assert snapshot(destination, "docs") == snapshot(filled, "docs")
    assert stats.copied == 1  # a3b
    assert stats.updated == 4  # a1, a2, img (vector), doc1#2 ("home")
    assert stats.unchanged == 2  # a4, doc1#1 ("the dog ran", as before)
    assert stats.deleted == 1 + 4 + 3  # a3, doc1#3..#6, doc2#1..#3
    assert stats.documents == 1
    assert destination.store.document(destination.store.get_collection("docs").id, "doc2") is None
    # The copy's vector is the given one, bit for bit.
    copied = destination.collection("docs").vector("img")
    assert np.array_equal(np.asarray(copied, dtype=np.float32), np.float32(vector))


def test_cleared_metadata_and_unchunked_items_propagate(filled, database):
    # Two things the store's writes cannot clear in place (metadata given as None is
    # kept; a chunk record goes only with its item).
    destination = database("copy")
    copy_collection(filled, "docs", destination)
    docs = filled.collection("docs")
    docs.delete_items(["a1", "doc2"])
    docs.embed("a1", "one", store=True)  # same text, no metadata now
    docs.embed("doc2#1", "sqlite backup tools", store=True)  # a plain item, no chunk
    stats = copy_collection(filled, "docs", destination)
    assert snapshot(destination, "docs") == snapshot(filled, "docs")
    # a1 and doc2#1 rewritten; doc2#2 and doc2#3 deleted with their document.
    assert (stats.copied, stats.updated, stats.deleted) == (0, 2, 2)
    copied = destination.store.get_collection("docs")
    assert destination.store.chunk_records(copied.id, ["doc2#1"]) == {}
    assert destination.collection("docs").get("a1").metadata is None


def test_destination_that_differs_is_refused_and_left_alone(filled, database):
    destination = database("copy")
    # Another model (another length too: the model is named first).
    destination.collection("docs", model="resizable-test").embed("x", "other model")
    before = marks(destination, "docs")
    with pytest.raises(ModelMismatchError, match="uses model resizable-test, not hash-test"):
        copy_collection(filled, "docs", destination)
    assert marks(destination, "docs") == before
    # Same model, other dimensions.
    store = destination.store
    with store.transaction() as tx:
        store.ensure_collection(tx, "short", "hash-test", 8)
    with pytest.raises(DimensionMismatchError, match="holds 8-dimensional vectors, not 16"):
        copy_collection(filled, "docs", destination, new_name="short")
    # Same model and dimensions, another distance.
    destination.collection("dotted", model="hash", distance="dot").embed("y", "dot")
    with pytest.raises(VibesError, match="uses dot distance, not cosine"):
        copy_collection(filled, "docs", destination, new_name="dotted")
    assert destination.collection("dotted").count() == 1
    assert destination.collection("short").count() == 0


def test_copy_onto_itself_is_refused(filled, location):
    with pytest.raises(VibesError, match="onto itself"):
        copy_collection(filled, "docs", filled)
    if not os.path.exists(location("source")):
        return  # the rest is about files
    # The same file, named another way, is the same database.
    other = vibes.Database(os.path.relpath(location("source")))
    try:
        with pytest.raises(VibesError, match="onto itself"):
            copy_collection(filled, "docs", other)
    finally:
        other.close()


def test_missing_source_collection_or_database(filled, database, location):
    destination = database("copy")
    with pytest.raises(UnknownCollectionError, match="'nope' does not exist"):
        copy_collection(filled, "nope", destination)
    assert destination.collections() == []
    with pytest.raises(DatabaseOpenError):
        database("missing", create=False)


def test_empty_collection_copies_as_an_empty_collection(database, test_plugin):
    source = database("source")
    store = source.store
    with store.transaction() as tx:
        store.ensure_collection(tx, "empty", "hash-test", 16, "euclidean")
    destination = database("copy")
    assert copy_collection(source, "empty", destination).to_dict()["copied"] == 0
    record = destination.store.get_collection("empty")
    assert record is not None and (record.dimensions, record.distance) == (16, "euclidean")


def test_interrupted_copy_keeps_committed_batches_and_rerun_resumes(filled, database):
    destination = database("copy")
    total = len(snapshot(filled, "docs")["items"])
    calls: list[int] = []

    def stop_after_first(done: int, of: int) -> None:
        calls.append(done)
        assert of == total
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_collection(filled, "docs", destination, batch_size=4, progress=stop_after_first)
    assert calls == [4]
    assert destination.collection("docs").count() == 4  # the committed batch stayed

    # A write that fails in the third batch keeps the second one.
    store = destination.store
    real_upsert = store.upsert
    batches: list[int] = []

    def failing_upsert(tx, collection_id, items):
        batches.append(len(items))
        if len(batches) == 2:
            raise vibes.StorageError("disk full (on purpose)")
        real_upsert(tx, collection_id, items)

    store.upsert = failing_upsert  # type: ignore[method-assign]
    try:
        with pytest.raises(vibes.StorageError, match="on purpose"):
            copy_collection(filled, "docs", destination, batch_size=4)
    finally:
        del store.upsert
    assert destination.collection("docs").count() == 8

    stats = copy_collection(filled, "docs", destination, batch_size=4)
    assert (stats.copied, stats.unchanged) == (total - 8, 8)
    assert snapshot(destination, "docs") == snapshot(filled, "docs")


def test_destination_file_is_created(filled, database, location):
    if "://" in location("new"):
        pytest.skip("about database files")
    path = location("new")
    assert not os.path.exists(path)
    copy_collection(filled, "docs", database("new"))
    assert os.path.exists(path)
    assert snapshot(database("new"), "docs") == snapshot(filled, "docs")


# -- the command line --------------------------------------------------------------------


def shown(location: str) -> str:
    """How a database is named in messages: as given, a server URL without password."""
    return describe_url(location) if "://" in location else location


def test_cli_copies_and_reruns(invoke, filled, location):
    source, target = location("source"), location("cli-copy")
    result = invoke(["collections", "copy", "docs", "--from", source, "--to", target])
    assert result.exit_code == 0, result.output
    total = len(snapshot(filled, "docs")["items"])
    summary = json.loads(result.stdout)
    assert summary == {
        "collection": "docs",
        "from": shown(source),
        "to": shown(target),
        "as": "docs",
        "copied": total,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "documents": 2,
        "warnings": [],
    }
    assert result.stderr == (
        f"Copied {total}, updated 0, unchanged 0, deleted 0 items: "
        f"collection 'docs' of {shown(source)} to 'docs' in {shown(target)}\n"
    )
    again = invoke(["collections", "copy", "docs", "--from", source, "--to", target])
    assert json.loads(again.stdout)["unchanged"] == total
    with vibes.Database(target) as copy:
        assert snapshot(copy, "docs") == snapshot(filled, "docs")


def test_cli_as_within_one_database_and_from_the_environment(invoke, filled, location, monkeypatch):
    monkeypatch.setenv("VIBES_DB", location("source"))
    result = invoke(["collections", "copy", "docs", "--as", "docs-2", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["as"] == "docs-2"
    assert snapshot(filled, "docs-2") == snapshot(filled, "docs")


def test_cli_errors_are_one_line(invoke, filled, location):
    source, target = location("source"), location("cli-copy")
    copy = ["collections", "copy"]
    one_line_error(
        invoke([*copy, "nope", "--from", source, "--to", target]),
        "Collection 'nope' does not exist in",
    )
    absent = location("absent")
    one_line_error(
        invoke([*copy, "docs", "--from", absent, "--to", target]),
        "No vibes database at" if "://" in absent else "No database at",
    )
    if "://" not in target:
        assert not os.path.exists(target)  # a mistake creates no database
        assert not os.path.exists(absent)
    one_line_error(invoke([*copy, "docs", "--from", source, "--to", source]), "onto itself")
    with vibes.Database(target) as other:
        other.collection("docs", model="resizable-test").embed("x", "other")
    one_line_error(
        invoke([*copy, "docs", "--from", source, "--to", target]),
        "uses model resizable-test, not hash-test",
    )
    usage = invoke([*copy, "docs", "--from", source])
    assert usage.exit_code == 2 and "Give --to DATABASE, --as NEWNAME, or both" in usage.stderr

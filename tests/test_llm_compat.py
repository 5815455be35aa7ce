"""Databases are interchangeable with the real llm 0.36, in both directions."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import llm
import pytest
import sqlite_utils
from llm.embeddings_migrations import embeddings_migrations

import vibes
from vibes.vectors import content_hash

LLM = str(Path(sys.executable).parent / "llm")


def llm_cli(*args):
    result = subprocess.run([LLM, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_schema_is_exactly_what_llm_creates(tmp_path, db_path, test_plugin):
    vibes.Database(db_path).collection("c", model="hash").embed("1", "x")
    reference = sqlite_utils.Database(tmp_path / "llm.db")
    embeddings_migrations.apply(reference)

    def schema(path, tables=("collections", "embeddings", "_sqlite_migrations")):
        conn = sqlite3.connect(path)
        return {
            name: conn.execute(
                "select sql from sqlite_master where type in ('table', 'index') "
                "and (name = ? or tbl_name = ?) and name not like 'vibes\\_%' escape '\\' "
                "order by name",
                (name, name),
            ).fetchall()
            for name in tables
        }

    assert schema(db_path) == schema(tmp_path / "llm.db")
    # Besides llm's, embeddings carries vibes' triggers (the change log) and one index of
    # its own: the partial index of metadata that filters read, which llm never sees.
    added = sqlite3.connect(db_path).execute(
        "select name from sqlite_master where type = 'index' and tbl_name = 'embeddings' "
        "and name like 'vibes\\_%' escape '\\'"
    )
    assert [row[0] for row in added] == ["vibes_embeddings_metadata"]

    def applied(path):
        rows = sqlite3.connect(path).execute(
            "select name from _sqlite_migrations where migration_set = 'llm.embeddings' order by id"
        )
        return [row[0] for row in rows]

    assert applied(db_path) == applied(tmp_path / "llm.db")
    assert len(applied(db_path)) == 5


def test_database_written_by_vibes_opens_in_llm(tmp_path, db_path, minilm):
    db = vibes.Database(db_path)
    docs = db.collection("docs")
    texts = {
        "backup": "How to back up a SQLite database",
        "cats": "Cats are small furry animals",
        "dogs": "Dogs are loyal animals that bark",
        "python": "Python is a programming language",
        "bread": "Baking sourdough bread at home",
    }
    docs.embed_multi(texts.items(), store=True)
    docs.embed("meta", "Something with metadata", metadata={"a": 1}, store=True)

    listed = json.loads(llm_cli("collections", "list", "-d", db_path, "--json"))
    assert listed == [{"name": "docs", "model": vibes.models.DEFAULT_MODEL_ID, "num_embeddings": 6}]
    for item_id in ("cats", "backup"):
        from_llm = [
            json.loads(line)
            for line in llm_cli("similar", "docs", item_id, "-d", db_path).splitlines()
        ]
        from_vibes = docs.similar_by_id(item_id, n=10)
        assert [r["id"] for r in from_llm] == [r.id for r in from_vibes]
        assert [r["score"] for r in from_llm] == pytest.approx(
            [r.score for r in from_vibes], abs=1e-5
        )
        assert [r["content"] for r in from_llm] == [r.content for r in from_vibes]
        assert [r["metadata"] for r in from_llm] == [r.metadata for r in from_vibes]


class HashEmbeddings(llm.EmbeddingModel):
    """An llm embedding model of the test's own, giving the same vectors as vibes' hash-test."""

    model_id = "hash-test"
    supports_binary = True

    def embed_batch(self, items):
        from vibes_test_plugin import hash_vector

        for item in items:
            yield hash_vector(item)


def test_database_written_by_llm_opens_in_vibes(tmp_path, test_plugin):
    path = tmp_path / "from-llm.db"
    collection = llm.Collection("notes", sqlite_utils.Database(path), model=HashEmbeddings())
    entries = [
        ("n1", "remember the milk", {"list": "shopping"}),
        ("n2", "call the plumber about the leak", None),
        ("n3", "milk and bread and eggs", {"list": "shopping", "n": 3}),
    ]
    collection.embed_multi_with_metadata(entries, store=True)
    collection.embed("n4", b"binary bytes here", store=True)

    db = vibes.Database(path)
    assert [c.to_dict() for c in db.collections()] == [
        {"name": "notes", "model": "hash-test", "count": 4, "dimensions": 16}
    ]
    notes = db.collection("notes")
    assert notes.get("n1").content == "remember the milk"
    assert notes.get("n3").metadata == {"list": "shopping", "n": 3}
    conn = sqlite3.connect(path)
    hashes = dict(conn.execute("select id, content_hash from embeddings"))
    assert hashes["n2"] == content_hash("call the plumber about the leak")
    assert hashes["n4"] == content_hash(b"binary bytes here")
    neighbours = [m.id for m in notes.similar_by_id("n1", n=3)]
    from_llm = [e.id for e in collection.similar_by_id("n1", number=3)]
    assert neighbours == from_llm

    # vibes writes into the llm collection: same hashes, so nothing is embedded twice,
    # and the database still opens in llm afterwards.
    stats = notes.embed_multi([(i, c, m) for i, c, m in entries] + [("n5", "new note", None)])
    assert (stats.embedded, stats.skipped) == (1, 3)
    assert notes.get("n1").content == "remember the milk"  # not erased by a re-run without store
    assert notes.get("n3").metadata == {"list": "shopping", "n": 3}
    listed = json.loads(llm_cli("collections", "list", "-d", path, "--json"))
    assert listed == [{"name": "notes", "model": "hash-test", "num_embeddings": 5}]

"""vibes in SQL: the functions of vibes.sqlfunctions on a plain sqlite3 connection, and
`vibes sql`. The collections are real, embedded by the test plugin's hash model."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import vibes
from vibes.sqlfunctions import last_error, register
from vibes.vectors import decode_array, encode

ITEMS = [
    ("dogs", "dogs bark at the postman", {"kind": "pets"}),
    ("cats", "cats sleep all day long", {"kind": "pets"}),
    ("tax", "file your tax return before april", {"kind": "money"}),
    ("bread", "bake bread with a sourdough starter", {"kind": "food"}),
]


@pytest.fixture
def notes(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("notes", "hash")
    collection.embed_multi(ITEMS, store=True)
    return collection


@pytest.fixture
def conn(notes, db_path):
    connection = sqlite3.connect(db_path)
    register(connection)
    yield connection
    connection.close()


def test_llm_embed_functions_match_the_model(conn):
    model = vibes.get_model("hash")
    (blob,) = conn.execute("select llm_embed('hash', 'dogs bark')").fetchone()
    assert blob == encode(model.embed("dogs bark"))
    (decoded,) = conn.execute("select llm_embed_decode(?)", [blob]).fetchone()
    assert json.loads(decoded) == pytest.approx(model.embed("dogs bark"))
    a, b = model.embed("dogs bark loudly"), model.embed("cats sleep")
    expected = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    (score,) = conn.execute(
        "select llm_embed_cosine(llm_embed('hash', 'dogs bark loudly'), llm_embed('hash', ?))",
        ["cats sleep"],
    ).fetchone()
    assert score == pytest.approx(expected, abs=1e-6)
    # Stored vectors are the same blobs: compare a query with every stored item in SQL.
    rows = conn.execute(
        "select id, llm_embed_cosine(embedding, llm_embed('hash', 'dogs bark')) as s "
        "from embeddings order by s desc"
    ).fetchall()
    assert rows[0][0] == "dogs" and len(rows) == len(ITEMS)


def test_vibes_similar_joins_its_hits_to_any_table(conn, notes):
    rows = conn.execute(
        """
        select json_extract(hit.value, '$.id'), json_extract(hit.value, '$.score'),
               embeddings.content
        from json_each(vibes_similar('notes', 'sleepy cats', 2)) as hit
        join embeddings on embeddings.id = json_extract(hit.value, '$.id')
        """
    ).fetchall()
    expected = notes.similar("sleepy cats", 2)
    assert [(r[0], r[1]) for r in rows] == [(m.id, pytest.approx(m.score)) for m in expected]
    assert rows[0][2] == dict((i, c) for i, c, _ in ITEMS)[rows[0][0]]
    # An item's id searches by that item, leaving it out; the hits are what
    # `vibes similar` prints.
    (by_id,) = conn.execute("select vibes_similar('notes', 'dogs')").fetchone()
    hits = json.loads(by_id)
    assert len(hits) == 3 and "dogs" not in [h["id"] for h in hits]
    assert hits == [m.to_dict() for m in notes.similar_by_id("dogs", 10)]


def test_errors_are_sql_errors_that_say_what_went_wrong(conn):
    cases = [
        ("select vibes_similar('nope', 'x')", "Collection 'nope' does not exist"),
        ("select llm_embed('no-such-model', 'x')", "Unknown embedding model: no-such-model"),
        ("select llm_embed_cosine(x'00', llm_embed('hash', 'x'))", "a must be a vector blob"),
        ("select vibes_similar('notes', 'x', 0)", "n must be a whole number from 1 to 10000"),
        ("select llm_embed_decode('text')", "blob must be a vector blob"),
    ]
    for query, message in cases:
        with pytest.raises(sqlite3.OperationalError):
            conn.execute(query).fetchall()
        assert message in last_error(), query
    in_memory = sqlite3.connect(":memory:")
    register(in_memory)
    with pytest.raises(sqlite3.OperationalError):
        in_memory.execute("select vibes_similar('notes', 'x')").fetchall()
    assert "needs a database file" in last_error()


def test_vibes_mean_averages_the_vectors_of_a_group(conn, notes):
    rows = conn.execute(
        "select json_extract(metadata, '$.kind') as kind, vibes_mean(embedding), count(*) "
        "from embeddings group by kind order by kind"
    ).fetchall()
    vectors = {id: np.asarray(notes.vector(id)) for id, _, _ in ITEMS}
    pets = decode_array(dict((r[0], r[1]) for r in rows)["pets"])
    assert pets == pytest.approx((vectors["dogs"] + vectors["cats"]) / 2, abs=1e-6)
    # NULLs are skipped, as avg() skips them; nothing at all gives NULL.
    (only,) = conn.execute(
        "select vibes_mean(v) from (select embedding as v from embeddings where id = 'tax' "
        "union all select null)"
    ).fetchone()
    assert decode_array(only) == pytest.approx(vectors["tax"])
    assert conn.execute("select vibes_mean(null)").fetchone() == (None,)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("select vibes_mean(v) from (select x'0000803f' as v union all "
                     "select x'0000803f0000803f')").fetchall()  # fmt: skip
    assert "vectors of 1 and 2 numbers in one group" in last_error()


def test_vibes_sql_command(invoke, notes, db_path):
    result = invoke(
        ["sql", db_path, "select json_extract(value, '$.id') as id "
         "from json_each(vibes_similar('notes', :q, 2))", "-p", "q", "bread starter"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == [
        m.id for m in notes.similar("bread starter", 2)
    ]
    blob = invoke(["sql", db_path, "select embedding from embeddings where id = 'tax'"])
    encoded = json.loads(blob.output)["embedding"]
    assert encoded["$base64"] is True
    table = invoke(["sql", db_path, "select id from embeddings order by id", "--table"])
    assert table.output.split()[:3] == ["id", "-----", "bread"]
    # Read-only unless --write: nothing is lost by a stray statement.
    refused = invoke(["sql", db_path, "delete from embeddings"])
    assert refused.exit_code == 1
    assert "Error: SQL: attempt to write a readonly database" in refused.output
    assert notes.count() == len(ITEMS)
    allowed = invoke(["sql", db_path, "delete from embeddings where id = 'tax'", "--write"])
    assert allowed.exit_code == 0 and notes.count() == len(ITEMS) - 1
    for arguments, message in [
        ([db_path, "selec 1"], 'Error: SQL: near "selec": syntax error'),
        ([db_path, "select vibes_similar('x', 'y')"], "Error: SQL: vibes_similar: Collection"),
        (["missing.db", "select 1"], "Error: No database at missing.db"),
    ]:
        failed = invoke(["sql", *arguments])
        assert failed.exit_code == 1 and failed.output.startswith(message), failed.output
        assert "Traceback" not in failed.output


def test_datasette_finds_the_plugin_and_runs_the_functions(notes, db_path):
    import asyncio

    from datasette.app import Datasette
    from datasette.version import __version__ as datasette_version

    datasette = Datasette([db_path])
    # Datasette 1.0 answers SQL at /DB/-/query.json, 0.6x at /DB.json.
    query = "/test.json" if datasette_version.startswith("0.") else "/test/-/query.json"

    async def ask() -> tuple[list, list, int]:
        plugins = (await datasette.client.get("/-/plugins.json")).json()
        sql = (
            "select json_extract(value, '$.id') as id from "
            "json_each(vibes_similar('notes', 'sleepy cats', 2))"
        )
        rows = await datasette.client.get(query, params={"sql": sql, "_shape": "array"})
        bad = await datasette.client.get(
            query, params={"sql": "select vibes_similar('nope', 'x')", "_shape": "array"}
        )
        return plugins, rows.json(), bad.status_code

    plugins, rows, bad_status = asyncio.run(ask())
    assert "vibes" in [p["name"] for p in plugins]  # the entry point's name
    assert [r["id"] for r in rows] == [m.id for m in notes.similar("sleepy cats", 2)]
    assert bad_status == 400  # an SQL error, not a 500

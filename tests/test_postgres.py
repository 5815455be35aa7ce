"""The PostgreSQL backend as users meet it: the same commands and API as on SQLite,
against a real PostgreSQL with pgvector (the session's local server, conftest.py).

The storage contract itself runs in test_store_contract.py; here: search results equal
to SQLite's, filters and --where in PostgreSQL's SQL, pgvector's own HNSW index (with
iterative scans for filtered searches), half-precision storage, writes made behind
vibes' back, failures that leave nothing half-written, and the errors a user sees.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import psycopg
import pytest

import vibes
from vibes.errors import DatabaseOpenError, VibesError
from vibes.filters import build_filter


def random_rows(count: int, dims: int = 16, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(count, dims)).astype(np.float32)
    kinds = ["rare" if i % 100 == 0 else ("odd" if i % 2 else "even") for i in range(count)]
    return [
        {
            "id": f"v{i:04d}",
            "vector": row.tolist(),
            "content": f"item number {i} of kind {kinds[i]}",
            "metadata": {"kind": kinds[i], "n": i, "label": str(i)},
        }
        for i, row in enumerate(matrix)
    ]


@pytest.fixture
def both(pg_url, db_path, test_plugin):
    """The same 600 items in a SQLite file and in PostgreSQL."""
    rows = random_rows(600)
    made = []
    for location in (db_path, pg_url):
        collection = vibes.Database(location).collection("random", model="hash")
        collection.embed_multi(rows, store=True, batch_size=128)
        made.append(collection)
    return made


def same_hits(left, right) -> None:
    assert [m.id for m in left] == [m.id for m in right]
    assert np.allclose([m.score for m in left], [m.score for m in right], atol=1e-5)
    assert [m.metadata for m in left] == [m.metadata for m in right]
    assert [m.content for m in left] == [m.content for m in right]


@pytest.mark.parametrize(
    "options",
    [
        {"n": 10},
        {"n": 5, "filters": ["kind=odd"]},
        {"n": 5, "filters": ["n>=590"]},
        {"n": 5, "filters": ["label<2"]},  # text compares as text
        {"n": 5, "filters": ["n in 3,5,7"]},
        {"n": 5, "filters": ["kind!=even"]},
        {"n": 5, "prefix": "v01"},
        {"n": 5, "min_score": 0.2},
    ],
)
def test_searches_equal_sqlites(both, options):
    sqlite_side, pg_side = both
    query = np.random.default_rng(3).normal(size=16).astype(np.float32)
    same_hits(
        sqlite_side.similar_by_vector(query, **options),
        pg_side.similar_by_vector(query, **options),
    )
    same_hits(
        sqlite_side.similar_by_id("v0042", **options), pg_side.similar_by_id("v0042", **options)
    )


def test_text_and_hybrid_search(both):
    """Full-text search through PostgreSQL's own text search: the same matches as FTS5
    (ranked by its own scores), and hybrid search fusing both legs."""
    found = []
    for side in both:
        rare = side.similar("rare", n=50, mode="text")
        assert {m.id for m in rare} == {f"v{i:04d}" for i in range(0, 600, 100)}
        assert "v0017" in [m.id for m in side.similar("number 17", n=3, mode="text")]
        hybrid = side.similar("kind rare", n=5, mode="hybrid")
        assert len(hybrid) == 5 and hybrid[0].legs is not None
        found.append({m.id for m in hybrid})
    assert found[0] & found[1]


FILTER_ITEMS = [
    {"id": "a", "content": "a", "metadata": {"price": "3.50", "tags": ["x", "y"]}},
    {"id": "b", "content": "b", "metadata": {"price": 12, "on": True, "deep": {"k": "v"}}},
    {"id": "c", "content": "c", "metadata": {"price": "2021-05-01", "on": False}},
    {"id": "d", "content": "d", "metadata": {"other": 1, "price": " 7 "}},
    {"id": "e", "content": "e", "metadata": {"price": None, "name": "Émile"}},
    {"id": "f", "content": "f", "metadata": {"price": 1e300, "name": "zed"}},
    {"id": "g", "content": "g"},
]


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("price=3.5", {"a"}),
        ("price>3", {"a", "b", "d", "f"}),
        ("price<100", {"a", "b", "d"}),
        ("price!=3.5", {"b", "c", "d", "e", "f", "g"}),
        ("price=null", {"e"}),
        ("price>2021", {"f"}),
        ("price>=2021-01-01", {"a", "c"}),  # text with text, byte by byte
        ("on=true", {"b"}),
        ("on=false", {"c"}),
        ("deep.k=v", {"b"}),
        ('tags=["x","y"]', {"a"}),
        ("name>Z", {"e", "f"}),
        ("price in 12,3.5", {"a", "b"}),
        ("missing=1", set()),
    ],
)
def test_filters_mean_the_same_as_on_sqlite(pg_url, db_path, test_plugin, expression, expected):
    found = []
    for location in (db_path, pg_url):
        collection = vibes.Database(location).collection("meta", model="hash")
        collection.embed_multi(FILTER_ITEMS)
        store = collection.database.store
        found.append(set(store.matching(collection.id, build_filter([expression])).ids))
    assert found[0] == expected  # the reference: SQLite
    assert found[1] == expected


def test_where_is_postgresql_sql(both, invoke):
    _, pg_side = both
    url = pg_side.database.path
    result = invoke(
        [
            "similar",
            "random",
            "v0001",
            "-n",
            "3",
            "--where",
            "(metadata->>'n')::int < 10",
            "-d",
            url,
        ]
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 3 and all(int(h["id"][1:]) < 10 for h in hits)
    # A condition PostgreSQL cannot run is one line, exit 1.
    broken = invoke(["similar", "random", "v0001", "--where", "json_extract(x", "-d", url])
    assert broken.exit_code == 1
    assert broken.output.startswith("Error: Invalid filter") and "Traceback" not in broken.output


def test_command_line_output_equals_sqlites(both, invoke):
    sqlite_side, pg_side = both
    outputs = []
    for side in (sqlite_side, pg_side):
        result = invoke(
            ["similar", "random", "v0007", "-n", "4", "-f", "kind=even", "-d", side.database.path]
        )
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(line) for line in result.stdout.splitlines()])
    assert [h["id"] for h in outputs[0]] == [h["id"] for h in outputs[1]]
    listed = invoke(["collections", "list", "--json", "-d", pg_side.database.path])
    assert listed.exit_code == 0, listed.output
    assert [(c["name"], c["num_embeddings"]) for c in json.loads(listed.stdout)] == [
        ("random", 600)
    ]


def test_native_hnsw_index_is_built_used_and_reported(pg_url, test_plugin):
    collection = vibes.Database(pg_url).collection("big", model="hash")
    collection.embed_multi(random_rows(3000), store=True, batch_size=1000)
    exact = collection.similar_by_id("v0100", n=10, exact=True)
    state = collection.build_index()
    assert state.kind == "native"
    status = collection.index_status()
    assert status["kept_by"] == "database" and status["usable"] is True
    assert status["bytes"] > 0 and status["parameters"]["connectivity"] == 16
    retriever = collection.database.searcher.vector_retrievers[0]
    asked = []
    original = retriever.retrieve
    retriever.retrieve = lambda request: asked.append(original(request)) or asked[-1]  # type: ignore[method-assign]
    found = collection.similar_by_id("v0100", n=10)
    assert retriever.name == "native" and asked and asked[0] is not None  # the index answered
    # Scores come from the stored vectors, as an exact search's do.
    overlap = {m.id for m in found} & {m.id for m in exact}
    assert len(overlap) >= 8
    scores = {m.id: m.score for m in exact}
    assert all(abs(m.score - scores[m.id]) < 1e-5 for m in found if m.id in scores)
    # PostgreSQL keeps it in step with new writes: a new item is found at once.
    new = np.asarray(random_rows(1, seed=99)[0]["vector"], dtype=np.float32)
    collection.embed_multi([{"id": "fresh", "vector": new.tolist()}])
    assert collection.similar_by_vector(new, n=1)[0].id == "fresh"
    # The search depth changes in place: the next search asks PostgreSQL for that depth.
    collection.set_search_depth(300)
    assert collection.index_status()["parameters"]["expansion_search"] == 300
    store, depths = collection.database.store, []
    native = store.search_native
    store.search_native = lambda *a, **k: depths.append(k["expansion_search"]) or native(*a, **k)  # type: ignore[method-assign]
    assert collection.similar_by_vector(new, n=3)[0].id == "fresh"
    assert depths == [300]
    del store.search_native
    collection.drop_index()
    assert collection.database.store.native_index(collection.id) is None
    assert collection.index_status()["kind"] == "off"


@pytest.mark.slow
def test_crossing_the_threshold_builds_the_index_in_the_background(
    pg_url, test_plugin, monkeypatch, run
):
    monkeypatch.setenv("VIBES_INDEX_MIN_ITEMS", "500")
    monkeypatch.delenv("VIBES_INDEX_BUILD")  # the default: a build in the background
    collection = vibes.Database(pg_url).collection("auto", model="hash")
    collection.embed_multi(random_rows(400), batch_size=400)
    assert collection.index_status()["kind"] == "none"
    collection.embed_multi(random_rows(600)[400:], batch_size=200)
    done = run(["index", "auto", "--wait", "-d", pg_url])
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["kept_by"] == "database" and status["usable"] is True, status
    assert collection.database.store.native_index(collection.id)["valid"]
    found = collection.similar_by_id("v0001", n=5)
    exact = collection.similar_by_id("v0001", n=5, exact=True)
    assert len(found) == 5 and found[0].id == exact[0].id


def test_filtered_index_search_returns_n_hits_when_n_match(pg_url, test_plugin):
    """pgvector's classic failure: the graph yields ef_search candidates, the filter keeps
    a few. Iterative scans keep going until n match."""
    collection = vibes.Database(pg_url).collection("filtered", model="hash")
    collection.embed_multi(random_rows(3000), store=True, batch_size=1000)
    collection.build_index()
    store = collection.database.store
    rare = build_filter(["kind=rare"])  # 30 of 3,000 items (1%)
    query = np.random.default_rng(5).normal(size=(1, 16)).astype(np.float32)
    query /= np.linalg.norm(query)
    found = store.search_native(
        collection.id, 16, "cosine", query, 10, condition=rare, expansion_search=40
    )
    assert found is not None and len(found[0]) == 10
    matching = set(store.matching(collection.id, rare).ids)
    assert {item_id for item_id, _ in found[0]} <= matching
    # Through the search pipeline, which leaves the filter to the database.
    hits = collection.similar_by_vector(query[0], n=10, filters=["kind=rare"])
    exact = collection.similar_by_vector(query[0], n=10, filters=["kind=rare"], exact=True)
    assert len(hits) == 10 and {m.id for m in hits} <= matching
    assert len({m.id for m in hits} & {m.id for m in exact}) >= 8
    # A filter fewer items pass than asked for: all of them, exactly.
    few = collection.similar_by_vector(query[0], n=10, filters=["n in 5,6,7"])
    assert sorted(m.id for m in few) == ["v0005", "v0006", "v0007"]
    assert collection.similar_by_vector(query[0], n=10, filters=["kind=none"]) == []


def test_half_precision_storage(pg_url, test_plugin):
    collection = vibes.Database(pg_url).collection("half", model="hash")
    rows = random_rows(500)
    collection.embed_multi(rows, batch_size=250)
    store = collection.database.store
    before = collection.similar_by_id("v0003", n=5, exact=True)
    collection.build_index(quantize="f16")
    assert store.vector_type(collection.id) == "halfvec"
    assert collection.index_status()["quantize"] == "f16"
    vector = store.get_vector(collection.id, "v0003")
    original = np.asarray(rows[3]["vector"], dtype=np.float32)
    assert vector is not None and np.allclose(vector, original, atol=1e-2)
    after = collection.similar_by_id("v0003", n=5, exact=True)
    assert [m.id for m in after][:3] == [m.id for m in before][:3]
    # New writes go to the half-precision column too.
    collection.embed_multi([{"id": "late", "vector": original.tolist()}])
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT embedding IS NULL, embedding_half IS NOT NULL FROM vibes_embeddings "
            "WHERE id = 'late'"
        ).fetchone()
    assert row == (True, True)
    with pytest.raises(VibesError, match="int8"):
        collection.build_index(quantize="i8")


def test_writes_behind_vibes_back_are_seen(both, pg_url):
    _, pg_side = both
    store = pg_side.database.store
    version = store.version()
    seq = store.last_change(pg_side.id)
    before = pg_side.similar_by_id("v0001", n=600)
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM vibes_embeddings WHERE id = 'v0002'")
        conn.execute("UPDATE vibes_embeddings SET metadata = '{\"k\": 1}' WHERE id = 'v0003'")
    assert store.version() != version
    assert store.changes_since(pg_side.id, seq)[1] == ["v0002"]
    after = pg_side.similar_by_id("v0001", n=600)
    assert {m.id for m in before} - {m.id for m in after} == {"v0002"}


def test_a_failed_first_write_leaves_no_collection(pg_url, test_plugin):
    db = vibes.Database(pg_url)
    collection = db.collection("broken", model="hash")
    with pytest.raises(Exception, match="broke on purpose"):
        collection.embed_multi([("a", "fine"), ("b", "FAIL")], batch_size=10)
    assert not db.has_collection("broken")
    # A failure in a later batch keeps the batches before it; a re-run resumes.
    items = [(f"i{n}", f"text {n}") for n in range(30)] + [("bad", "FAIL")]
    with pytest.raises(Exception, match="broke on purpose"):
        collection.embed_multi(items, batch_size=10)
    assert db.collection("broken").count() == 30
    stats = db.collection("broken").embed_multi(items[:30], batch_size=10)
    assert stats.embedded == 0


def test_text_postgresql_cannot_store_is_a_clear_error(pg_url, test_plugin):
    collection = vibes.Database(pg_url).collection("nul", model="hash")
    collection.embed("ok", "fine", store=True)
    with pytest.raises(VibesError, match="NUL"):
        collection.embed("bad", "a\x00b", store=True)
    assert collection.count() == 1


def test_connection_errors_are_one_line(run, tmp_path):
    for url, expected in (
        ("postgresql://nobody:secret@127.0.0.1:1/none", "Cannot connect to postgresql://nobody@"),
        ("postgresql://a:secret@[broken", "Cannot connect to"),
    ):
        done = run(["collections", "-d", url])
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {expected}"), done.stderr
        assert "secret" not in done.stderr


def test_a_database_without_pgvector_says_so(postgres_server):
    """A role that may not create the extension, in a database that lacks it."""
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS plain")
        conn.execute("DROP ROLE IF EXISTS plainuser")
        conn.execute("CREATE ROLE plainuser LOGIN")
        conn.execute("CREATE DATABASE plain OWNER plainuser")
    head, _, query = postgres_server.partition("?")
    url = head.rsplit("/", 1)[0].replace("postgres:@", "plainuser:@") + "/plain?" + query
    with pytest.raises(DatabaseOpenError, match="pgvector") as raised:
        vibes.Database(url)
    assert "\n" not in str(raised.value)
    with psycopg.connect(url) as conn:  # nothing half-made
        assert conn.execute("SELECT to_regclass('vibes_embeddings')").fetchone() == (None,)


@pytest.mark.slow
def test_pg_commands_start_report_and_stop_a_server(tmp_path):
    data = tmp_path / "pgdata"

    def vibes_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "vibes", "pg", *args, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert vibes_cli("url").returncode == 1
    started = vibes_cli("start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql://")
    try:
        assert vibes_cli("url").stdout.strip() == url
        assert json.loads(vibes_cli("status").stdout)["running"] is True
        assert vibes_cli("start").stdout.strip() == url  # already running: the same one
        with psycopg.connect(url) as conn:
            version = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
        assert version is not None and tuple(map(int, version[0].split(".")[:2])) >= (0, 8)
    finally:
        stopped = vibes_cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(vibes_cli("status").stdout)["running"] is False


def test_sqlite_only_commands_say_so(pg_url, invoke):
    """`vibes sql` and `vibes serve` work on SQLite files (SQLite's SQL, Datasette)."""
    for args in (["sql", pg_url, "select 1"], ["serve", pg_url, "--port", "0"]):
        result = invoke(args)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "vibes collections copy" in lines[0], result.output


def test_pg_start_refuses_a_directory_that_holds_other_files(tmp_path, invoke):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke(["pg", "start", "--data-dir", tmp_path])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Cannot start a PostgreSQL server in")
    assert "not empty" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_the_same_session_of_commands_on_both_backends(
    db_path, pg_url, test_plugin, invoke, tmp_path
):
    """One user session (chunked documents, searches by document with context, delete,
    export, related items, clusters) run on SQLite and on PostgreSQL prints the same."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cats.md").write_text(
        "# Cats\n\nCats sleep most of the day. They purr when content.\n\n"
        "## Food\n\nCats eat fish and chicken. Kittens drink milk.\n"
    )
    (notes / "dogs.md").write_text(
        "# Dogs\n\nDogs bark at strangers. They love long walks.\n\n"
        "## Training\n\nPuppies learn to sit and fetch with treats.\n"
    )
    (notes / "money.md").write_text("# Money\n\nBond yields rose while stocks fell on Monday.\n")
    printed = []
    for location in (db_path, pg_url):

        def vibes_cli(*args: str, location: str = location) -> str:
            result = invoke([*args, "-d", location])
            assert result.exit_code == 0, (args, result.output)
            return result.stdout

        session = [
            vibes_cli("embed-multi", "notes", "--files", str(notes), "*.md", "--store") and "",
            vibes_cli(
                "embed-multi",
                "notes",
                "--files",
                str(notes),
                "*.md",
                "--store",
                "--chunk",
                "paragraphs",
                "--prefix",
                "chunked/",
            )
            and "",
            vibes_cli("similar", "notes", "-c", "kittens milk", "-n", "3"),
            vibes_cli("similar", "notes", "-c", "walks", "--documents", "-n", "2"),
            vibes_cli(
                "similar",
                "notes",
                "-c",
                "fish",
                "--context",
                "1",
                "-n",
                "1",
                "--prefix",
                "chunked/",
            ),
            vibes_cli("similar", "notes", "-c", "fish", "--mode", "text", "-n", "3"),
            vibes_cli("delete", "notes", "money.md"),
            vibes_cli("collections", "export", "notes"),
            vibes_cli("related", "notes", "-n", "2"),
            vibes_cli("related", "notes", "cats.md", "-n", "2"),
            vibes_cli("cluster", "notes", "2", "--nl", "--store"),
            vibes_cli("similar", "notes", "-c", "walks", "-n", "3", "-f", "n!=1"),
        ]
        printed.append(session)
    for step, (sqlite_out, pg_out) in enumerate(zip(*printed)):
        left, right = (
            [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            for out in (sqlite_out, pg_out)
        )
        if step == 5:  # BM25 and ts_rank_cd score differently: the same matches
            assert {row["id"] for row in left} == {row["id"] for row in right}
            continue
        same_output(left, right, step)


#: Keys whose values differ from run to run (timings, timestamps).
VARYING = {"score", "seconds", "built"}


def same_output(left: list[dict], right: list[dict], step: int) -> None:
    """The same rows, allowing for ties: the hash model's vectors tie often, tied hits
    may come in either order, and which of those tied at the cut-off make the list is
    either backend's choice."""

    def stripped(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items() if k not in VARYING}, sort_keys=True)

    if not any("score" in row for row in left):
        assert sorted(map(stripped, left)) == sorted(map(stripped, right)), step
        return
    assert [round(r["score"], 4) for r in left] == [round(r["score"], 4) for r in right], step
    cut = round(left[-1]["score"], 4)

    def above(rows: list[dict]) -> list[str]:
        return sorted(stripped(r) for r in rows if round(r["score"], 4) > cut)

    assert above(left) == above(right), step


def test_embed_multi_sql_reads_rows_of_the_same_server(pg_url, test_plugin, invoke):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE articles (slug text, body text, year int)")
        conn.execute(
            "INSERT INTO articles VALUES ('a', 'cats purr', 2020), ('b', 'dogs bark', 2021), "
            "('c', '100% pure', 2022)"
        )
    result = invoke(
        [
            "embed-multi",
            "arts",
            "--sql",
            "SELECT slug AS id, body AS content, year FROM articles WHERE body LIKE '%r%'",
            "-m",
            "hash",
            "--store",
            "-d",
            pg_url,
        ]
    )
    assert result.exit_code == 0, result.output
    collection = vibes.Database(pg_url).collection("arts")
    assert sorted(collection.database.store.item_ids(collection.id)) == ["a", "b", "c"]
    # The query runs read-only, through a cursor: it cannot change the database.
    refused = invoke(
        [
            "embed-multi",
            "x",
            "--sql",
            "DELETE FROM articles RETURNING slug AS id",
            "-m",
            "hash",
            "-d",
            pg_url,
        ]
    )
    assert refused.exit_code == 1 and refused.output.startswith("Error: SQL query failed")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (3,)
    attached = invoke(
        [
            "embed-multi",
            "x",
            "--sql",
            "SELECT 1 AS id",
            "--attach",
            "o",
            "o.db",
            "-m",
            "hash",
            "-d",
            pg_url,
        ]
    )
    assert attached.exit_code == 1 and "SQLite files only" in attached.output

"""vibes on the web, through Datasette's own client (the real plugin, real ASGI requests,
a real SQLite file): the JSON search API answers what `vibes similar` prints, bad input
gets 4xx JSON, pages escape every text, stored images are served as images only, and
nothing is written unless asked. `vibes serve` as a process is tested at the end."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import socket
import urllib.error
import urllib.request
from html import escape as html_escape
from pathlib import Path

import pytest
from checks import one_line_error, serving
from datasette.utils import tilde_encode

import vibes
from vibes.errors import DatabaseOpenError

ITEMS = [
    ("dogs", "dogs bark at the postman", {"kind": "pets", "year": 2021}),
    ("cats", "cats sleep all day long", {"kind": "pets", "year": 2019}),
    ("tax", "file your tax return before april", {"kind": "money", "year": 2023}),
    ("bread", "bake bread with a sourdough starter", {"kind": "food", "year": 2020}),
    (
        "hostile",
        '<script>window.hacked = 1</script><img src=x onerror="window.hacked = 2"> cats and dogs',
        {"kind": "<b>bold</b>"},
    ),  # fmt: skip
    ("dir/with spaces.md", "a path like id with spaces, cats too", None),
]


def file_hash(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def notes(db_path, test_plugin):
    database = vibes.Database(db_path)
    collection = database.collection("notes", "hash")
    collection.embed_multi(ITEMS, store=True)
    collection.build_fulltext()
    database.close()
    return vibes.Database(db_path).collection("notes")


def datasette_for(*paths: str, **metadata):
    """Datasette over ``paths`` as `vibes serve` makes it, or with ``metadata`` as a user's
    own `datasette` would run it (the plugin found through its entry point; asking off
    unless configured)."""
    from vibes.web.serve import configured, make_datasette

    if metadata:
        from datasette.app import Datasette

        return configured(Datasette, paths, metadata)
    return make_datasette(paths)


def get(datasette, path: str, /, **params):
    async def fetch():
        return await datasette.client.get(path, params=params or None)

    return asyncio.run(fetch())


def similar_lines(invoke, db_path: str, *args: str) -> list[dict]:
    result = invoke(["similar", "notes", *args, "-d", db_path])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_search_json_answers_what_vibes_similar_prints(notes, db_path, invoke):
    datasette = datasette_for(db_path)
    cases = [
        ({"q": "sleepy cats"}, ["-c", "sleepy cats"]),
        ({"q": "cats", "n": "2"}, ["-c", "cats", "-n", "2"]),
        ({"id": "dogs"}, ["dogs"]),
        ({"q": "pets", "filter": "kind=pets"}, ["-c", "pets", "--filter", "kind=pets"]),
        ({"q": "cats dogs", "mode": "hybrid", "n": "3"},
         ["-c", "cats dogs", "--hybrid", "-n", "3"]),
        ({"q": "cats", "mode": "text", "snippets": "1"}, ["-c", "cats", "--mode", "text",
                                                          "--snippets"]),
        ({"q": "bread", "min_score": "0.1"}, ["-c", "bread", "--min-score", "0.1"]),
        ({"q": "x", "where": "json_extract(metadata, '$.year') > 2020"},
         ["-c", "x", "--where", "json_extract(metadata, '$.year') > 2020"]),
    ]  # fmt: skip
    for params, arguments in cases:
        response = get(datasette, "/-/vibes/notes/search.json", **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == similar_lines(invoke, db_path, *arguments), params
    # A list of several filters, as --filter given twice.
    response = get(
        datasette, "/-/vibes/notes/search.json?q=x&filter=kind%3Dpets&filter=year%3E2020"
    )
    assert [hit["id"] for hit in response.json()] == ["dogs"]
    # The object shape adds the warnings the CLI prints on stderr.
    shaped = get(datasette, "/-/vibes/notes/search.json", q="cats", _shape="object").json()
    assert shaped["collection"] == "notes" and shaped["warnings"] == []
    assert shaped["results"] == similar_lines(invoke, db_path, "-c", "cats")
    # An id with a slash and spaces, quoted in the query string.
    response = get(datasette, "/-/vibes/notes/search.json", id="dir/with spaces.md", n="1")
    assert response.status_code == 200 and len(response.json()) == 1


def test_bad_input_is_a_4xx_json_error_never_a_500(notes, db_path):
    datasette = datasette_for(db_path)
    search = "/-/vibes/notes/search.json"
    cases = [
        (search, {}, 400, "Give q=TEXT"),
        (search, {"q": ""}, 400, "Give q=TEXT"),
        (search, {"q": "x", "n": "0"}, 400, "n must be from 1 to 1000"),
        (search, {"q": "x", "n": "abc"}, 400, "n must be a whole number"),
        (search, {"q": "x", "n": "99999999999999999999"}, 400, "n must be from 1"),
        (search, {"q": "x" * 50_000}, 400, "q is too long"),
        (search, {"q": "a\x00b"}, 400, "NUL"),
        (search, {"q": "x", "bogus": "1"}, 400, "Unknown parameter 'bogus'"),
        (search + "?q=x&n=1&n=2", {}, 400, "n was given 2 times"),
        (search, {"q": "x", "mode": "magic"}, 400, "mode must be one of"),
        (search, {"q": "x", "weight": "nan"}, 400, "weight must be a number"),
        (search, {"q": "x", "min_score": "inf"}, 400, "min_score must be a number"),
        (search, {"q": "x", "exact": "maybe"}, 400, "exact must be true or false"),
        (search, {"q": "x", "filter": "nokey"}, 400, "Filter 'nokey' has no operator"),
        (search, {"q": "x", "where": "no_such_column = 1"}, 400, "no_such_column"),
        (search, {"q": "x", "id": "dogs"}, 400, "not q and id"),
        (search, {"id": "no-such-item"}, 404, "No item 'no-such-item'"),
        (search, {"expr": "cats + file:/etc/passwd"}, 400, "not file: terms"),
        (search, {"q": "x", "fts_syntax": "1"}, 400, "fts_syntax applies"),
        (search, {"q": "x", "rerank": "no-such-reranker"}, 400, "no-such-reranker"),
        (search, {"q": "x", "database": "nope"}, 404, "No database 'nope'"),
        ("/-/vibes/nope/search.json", {"q": "x"}, 404, "No collection 'nope'"),
        ("/-/vibes/..%2F..%2Fetc%2Fpasswd/search.json", {"q": "x"}, 404, "No collection"),
        ("/-/vibes/notes/image", {"id": "dogs"}, 404, "has no stored image"),
        ("/-/vibes/notes/image", {}, 400, "Give id=ITEM"),
        ("/-/vibes/notes/image", {"id": "dogs", "x": "1"}, 400, "Unknown parameter"),
    ]
    for path, params, status, message in cases:
        response = get(datasette, path, **params)
        assert response.status_code == status, (path, params, response.text)
        body = response.json()
        assert body["ok"] is False and message in body["error"], (params, body)
        assert "Traceback" not in response.text
    # Where the instance forbids SQL, `where` (an SQL condition) is forbidden too.
    locked = datasette_for(db_path, databases={"test": {"allow_sql": False}})
    refused = get(locked, search, q="x", where="1 = 1")
    assert refused.status_code == 403 and "permission" in refused.json()["error"]
    assert get(locked, search, q="x").status_code == 200


def test_the_server_writes_nothing_unless_asked(notes, db_path):
    before = file_hash(db_path)
    datasette = datasette_for(db_path)
    for params in ({"q": "cats"}, {"q": "cats", "mode": "hybrid"}, {"id": "dogs"}):
        assert get(datasette, "/-/vibes/notes/search.json", **params).status_code == 200
    assert get(datasette, "/-/vibes/notes", q="cats").status_code == 200
    assert get(datasette, "/test/embeddings/1,dogs").status_code == 200
    assert file_hash(db_path) == before
    # The read-only database under it refuses writes with a one-line error.
    readonly = vibes.Database(db_path, readonly=True)
    with pytest.raises(DatabaseOpenError, match="opened read-only"):
        readonly.collection("notes").embed("new", "a new item")
    assert readonly.collection("notes").count() == len(ITEMS)
    # A file llm wrote (no vibes tables yet) is refused read-only, with the way out.
    plain = Path(db_path).with_name("llm.db")
    import sqlite3

    sqlite3.connect(plain).executescript(
        "create table collections (id integer primary key, name text, model text);"
        "create table embeddings (collection_id integer, id text, embedding blob, "
        "content text, content_blob blob, content_hash blob, metadata text, updated integer);"
    )
    with pytest.raises(DatabaseOpenError, match="run 'vibes collections -d"):
        vibes.Database(plain, readonly=True)
    # Any other SQLite file says it holds no embeddings.
    other = Path(db_path).with_name("other.db")
    sqlite3.connect(other).execute("create table t (x)")
    with pytest.raises(DatabaseOpenError, match="holds no embeddings: embed something"):
        vibes.Database(other, readonly=True)


def test_search_page_escapes_every_text_and_marks_the_words(notes, db_path):
    datasette = datasette_for(db_path)
    page = get(datasette, "/-/vibes/notes", q="cats dogs", mode="hybrid", n="10")
    assert page.status_code == 200
    html = page.text
    assert "<script>window.hacked" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.hacked = 1&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # metadata is escaped too
    assert re.search(r"<mark>cats</mark>", html)
    # Every hit links to its row in Datasette (ids tilde-encoded) and to more like it.
    assert 'href="/test/embeddings/1,dogs"' in html
    assert 'href="/test/embeddings/1,dir~2Fwith+spaces~2Emd"' in html
    row = get(datasette, "/test/embeddings/1,dir~2Fwith+spaces~2Emd")
    assert row.status_code == 200 and "a path like id with spaces" in row.text
    assert "/-/vibes/notes?id=dogs" in html
    # The API link repeats the page's query.
    assert "/-/vibes/notes/search.json?q=cats+dogs&amp;mode=hybrid&amp;n=10" in html
    # A bad option is shown on the page with its status, not as a traceback.
    bad = get(datasette, "/-/vibes/notes", q="x", n="0")
    assert bad.status_code == 400 and "n must be from 1 to 1000" in bad.text
    missing = get(datasette, "/-/vibes/nope")
    assert missing.status_code == 404 and "No collection" in missing.text
    empty = get(datasette, "/-/vibes/notes")
    assert empty.status_code == 200 and 'class="vibes-hit' not in empty.text
    assert "6 items embedded by hash-test" in empty.text


def test_row_pages_show_similar_items(notes, db_path):
    datasette = datasette_for(db_path)
    page = get(datasette, "/test/embeddings/1,hostile").text
    script = page[page.index("var data = ") :].split(";\n", 1)[0][len("var data = ") :]
    panel = json.loads(script)
    expected = notes.similar_by_id("hostile", 10)
    assert [item["id"] for item in panel["items"]] == [m.id for m in expected]
    assert panel["items"][0]["row"].startswith("/test/embeddings/1,")
    assert "Precomputed" not in panel.get("note", "")
    # The item's own text never closes the script: every < is escaped in it.
    assert "</script><img" not in page
    # Precomputed related items are used when `vibes related` made them.
    notes.build_related(3)
    panel = json.loads(
        get(datasette, "/test/embeddings/1,cats").text.split("var data = ")[1].split(";\n")[0]
    )
    assert [item["id"] for item in panel["items"]] == [i for i, _ in notes.related("cats")]
    assert "Precomputed" in panel["note"]
    # Rows of other tables get no panel.
    assert "vibes-similar" not in get(datasette, "/test/collections/1").text


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", (size, size), color).save(output, "PNG")
    return output.getvalue()


def test_images_are_shown_as_thumbnails_and_nothing_else_is_served(db_path, test_plugin):
    from PIL import Image

    photos = vibes.Database(db_path).collection("photos", "hash")
    photos.embed("red.png", png((255, 0, 0), 400), store=True)
    photos.embed("blue.png", png((0, 0, 255)), store=True)
    photos.embed("page.svg", b"<svg onload='alert(1)'></svg>", store=True)
    photos.embed("page.html", b"<html><script>alert(1)</script></html>", store=True)
    datasette = datasette_for(db_path)
    page = get(datasette, "/-/vibes/photos", id="blue.png").text
    assert '<img src="/-/vibes/photos/image?id=red.png&amp;size=192' in page
    assert "image?id=page.svg" not in page and "image?id=page.html" not in page
    full = get(datasette, "/-/vibes/photos/image", id="red.png")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert full.content == png((255, 0, 0), 400)
    small = get(datasette, "/-/vibes/photos/image", id="red.png", size="32")
    assert Image.open(io.BytesIO(small.content)).size == (32, 32)
    for item in ("page.svg", "page.html"):
        refused = get(datasette, "/-/vibes/photos/image", id=item)
        assert refused.status_code == 404 and "no stored image" in refused.json()["error"]
    assert get(datasette, "/-/vibes/photos/image", id="red.png", size="5").status_code == 400


def test_collections_of_several_databases(notes, db_path, tmp_path):
    other_path = str(tmp_path / "other.db")
    other = vibes.Database(other_path).collection("notes", "hash")
    other.embed_multi([("elsewhere", "cats in another database")], store=True)
    datasette = datasette_for(db_path, other_path)
    listing = get(datasette, "/-/vibes.json").json()
    assert [
        (entry["database"], [c["name"] for c in entry["collections"]]) for entry in listing
    ] == [
        ("test", ["notes"]),
        ("other", ["notes"]),
    ]
    assert listing[1]["collections"][0]["api"] == "/-/vibes/notes/search.json?database=other"
    # Without database=, the first database holding the collection answers.
    first = get(datasette, "/-/vibes/notes/search.json", q="cats", n="1").json()
    assert first[0]["id"] != "elsewhere"
    chosen = get(datasette, "/-/vibes/notes/search.json", q="cats", database="other").json()
    assert [hit["id"] for hit in chosen] == ["elsewhere"]
    page = get(datasette, "/-/vibes").text
    assert page.count('role="search"') == 2 and 'name="database" value="other"' in page


# -- vibes serve, a real process ---------------------------------------------------------------


def fetch(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_vibes_serve_answers_like_vibes_similar(notes, db_path, run):
    before = file_hash(db_path)
    with serving(db_path) as start:
        assert start.endswith("/-/vibes/notes")  # the only collection's page
        base = start.rsplit("/-/", 1)[0]
        status, hits = fetch(f"{base}/-/vibes/notes/search.json?q=sleepy+cats&n=3")
        printed = run(["similar", "notes", "-c", "sleepy cats", "-n", "3", "-d", db_path])
        assert status == 200 and hits == [json.loads(line) for line in printed.stdout.splitlines()]
        status, error = fetch(f"{base}/-/vibes/notes/search.json?q=x&n=-1")
        assert status == 400 and "n must be from 1" in error["error"]  # type: ignore[index]
        # The port is taken while it runs: a second server says so in one line.
        port = int(base.rsplit(":", 1)[1])
        taken = run(["serve", db_path, "--port", port])
        one_line_error(taken, f"Cannot listen on 127.0.0.1:{port}")
    assert file_hash(db_path) == before
    one_line_error(run(["serve", "missing.db"]), "No database at missing.db")


def test_the_listening_socket_lets_asyncio_turn_nagle_off():
    from vibes.web.serve import bind

    # asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; with Nagle's
    # algorithm on, every answer on a kept-alive connection waits for a delayed ACK.
    with bind("127.0.0.1", 0) as listener:
        assert listener.proto == socket.IPPROTO_TCP


def test_vibes_serve_binds_to_this_machine_only_by_default(notes, db_path):
    with serving(db_path) as start:
        assert start.startswith("http://127.0.0.1:")
        port = int(start.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass


# -- concurrent searches share model calls ------------------------------------------------------


def test_concurrent_searches_are_answered_in_batches_each_its_own_answer():
    import threading
    import time

    from vibes.web.batching import Batcher

    batcher = Batcher(max_batch=4)
    calls: list[list[str]] = []

    def answer(queries):
        calls.append(list(queries))
        time.sleep(0.2)  # while one batch runs, the others queue up
        if "bad" in queries:
            raise ValueError("bad query")
        return [query.upper() for query in queries]

    results: dict[str, object] = {}

    def client(query: str) -> None:
        try:
            results[query] = batcher.run("key", query, answer)
        except ValueError as error:
            results[query] = error

    assert batcher.run("key", "alone", answer) == "ALONE" and calls == [["alone"]]
    calls.clear()
    queries = [f"q{i}" for i in range(9)] + ["bad"]
    threads = [threading.Thread(target=client, args=(query,)) for query in queries]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=30)
    assert {q: r for q, r in results.items() if q != "bad"} == {
        q: q.upper() for q in queries if q != "bad"
    }
    assert isinstance(results["bad"], ValueError)  # its error only: the others answered
    batched = [call for call in calls if len(call) > 1]
    assert batched and max(len(call) for call in calls) <= 4
    assert sum(len(call) for call in calls if "bad" not in call) >= 9
    assert batcher._lanes == {}  # nothing left waiting


def test_concurrent_api_requests_get_the_hits_of_lone_ones(notes, db_path):
    from vibes.web.serve import make_datasette

    datasette = make_datasette([db_path], batch=True)  # vibes serve --batch
    texts = ["sleepy cats", "dogs", "tax april", "sourdough", "cats and dogs", "bread"] * 3

    async def together():
        return await asyncio.gather(
            *(datasette.client.get("/-/vibes/notes/search.json", params={"q": q}) for q in texts)
        )

    for text, response in zip(texts, asyncio.run(together())):
        assert response.status_code == 200
        alone = notes.similar(text, 10)
        hits = response.json()
        assert [hit["id"] for hit in hits] == [match.id for match in alone]
        assert [hit["score"] for hit in hits] == pytest.approx([m.score for m in alone], abs=1e-6)


# -- answers -----------------------------------------------------------------------------------


def test_ask_json_answers_what_vibes_ask_json_prints(notes, db_path, invoke, fake_llm):
    datasette = datasette_for(db_path)
    response = get(datasette, "/-/vibes/notes/ask.json", q="cats sleep", min_score="-1", n="3")
    assert response.status_code == 200, response.text
    printed = invoke(["ask", "notes", "cats sleep", "--min-score", "-1", "-n", "3", "--json",
                      "-d", db_path])  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert response.json() == json.loads(printed.stdout)
    assert response.json()["answer"].startswith("Answer from [")
    for params, status, message in [
        ({}, 400, "Give q=QUESTION"),
        ({"q": "x", "template": "/etc/passwd"}, 400, "Unknown parameter 'template'"),
        ({"q": "x", "llm": "no-such-llm"}, 400, "no-such-llm"),
        ({"q": "x", "temperature": "9"}, 400, "temperature must be a number from 0 to 2"),
    ]:
        failed = get(datasette, "/-/vibes/notes/ask.json", **params)
        assert failed.status_code == status, failed.text
        assert message in failed.json()["error"]


def test_the_search_page_asks_and_links_citations_to_sources(notes, db_path, fake_llm):
    datasette = datasette_for(db_path)
    page = get(datasette, "/-/vibes/notes", q="cats dogs", ask="1", mode="vector",
               n="4", min_score="-1", documents="on")  # fmt: skip
    assert page.status_code == 200, page.text
    html = page.text
    assert re.search(r'Answer from (<a href="#source-\d">\[\d\]</a>)+\.', html)
    assert 'id="source-1"' in html and 'href="/test/embeddings/1,' in html
    assert "<script>window.hacked" not in html
    # The API link asks the same question, without the search's own fields.
    assert "/-/vibes/notes/ask.json?q=cats+dogs&amp;mode=vector&amp;n=4&amp;min_score=-1" in html
    # Without an LLM to ask, the page says so in one line.
    nothing = get(datasette, "/-/vibes/notes", q="cats", ask="1", llm="no-such-llm")
    assert nothing.status_code == 400 and "no-such-llm" in nothing.text


def test_stored_clusters_have_a_page_and_name_each_hit(notes, db_path):
    datasette = datasette_for(db_path)
    assert get(datasette, "/-/vibes/notes/clusters.json").json() == []
    assert "No stored clustering yet" in get(datasette, "/-/vibes/notes/clusters").text
    assert "/clusters" not in get(datasette, "/-/vibes/notes", q="cats").text
    result = notes.cluster(2, store=True, seed=1)
    clusters = get(datasette, "/-/vibes/notes/clusters.json").json()
    assert sorted((c["name"], c["size"]) for c in clusters) == sorted(
        (c.name, c.size) for c in result.clusters
    )
    assert sum(c["size"] for c in clusters) == len(ITEMS)
    member = clusters[0]["members"][0]
    assert result.assignments[member["id"]] == clusters[0]["cluster"]
    assert member["row"].startswith("/test/embeddings/1,")
    page = get(datasette, "/-/vibes/notes/clusters").text
    assert all(c.name in page for c in result.clusters if c.name and "<" not in c.name)
    assert "<script>window.hacked" not in page
    # Search results say which cluster each hit is in.
    search = get(datasette, "/-/vibes/notes", q="cats").text
    assert 'href="/-/vibes/notes/clusters"' in search
    names = re.findall(r'<span class="vibes-cluster-name">([^<]*)</span>', search)
    assert len(names) == len(ITEMS) and set(names) <= {html_escape(c.name) for c in result.clusters}
    assert get(datasette, "/-/vibes/notes/clusters.json", bogus="1").status_code == 400
    assert get(datasette, "/-/vibes/nope/clusters.json").status_code == 404


def test_ask_streams_server_sent_events_as_the_model_writes(notes, db_path, fake_llm, chat):
    datasette = datasette_for(db_path)
    params = {"q": "cats sleep", "min_score": "-1", "n": "3"}
    whole = get(datasette, "/-/vibes/notes/ask.json", **params).json()
    streamed = get(datasette, "/-/vibes/notes/ask.json", stream="1", **params)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [
        (block.split("\n")[0][len("event: ") :], json.loads(block.split("\n")[1][len("data: ") :]))
        for block in streamed.text.strip().split("\n\n")
    ]
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert names.count("piece") == -(-len(whole["answer"]) // chat.piece_size) > 1
    assert "".join(data for name, data in events if name == "piece") == whole["answer"]
    # The sources come first, each with where to find it: its label and its row's page.
    sent = events[0][1]
    assert [s["row"] for s in sent] == [f"/test/embeddings/1,{tilde_encode(s['id'])}" for s in sent]
    assert [{k: v for k, v in s.items() if k not in ("label", "row")} for s in sent] == [
        {k: v for k, v in s.items() if k != "cited"} for s in whole["sources"]
    ]
    assert events[-1][1] == whole
    # A problem found before the stream starts has a status of its own.
    refused = get(datasette, "/-/vibes/notes/ask.json", stream="1", q="x", llm="nope")
    assert refused.status_code == 400 and "nope" in refused.json()["error"]


# -- what a review found -------------------------------------------------------------------------


def test_search_pages_of_several_databases_and_odd_parameters(notes, db_path, tmp_path):
    other = str(tmp_path / "other.db")
    vibes.Database(other).collection("notes", "hash").embed("x", "cats elsewhere", store=True)
    datasette = datasette_for(db_path, other)
    for params in ({"q": "cats", "database": "other"}, {"q": "cats", "database": "test"}):
        page = get(datasette, "/-/vibes/notes", **params)
        assert page.status_code == 200 and 'class="vibes-hit' in page.text, page.text[-500:]
    elsewhere = get(datasette, "/-/vibes/notes", q="cats", database="other").text
    assert 'href="/other/embeddings/1,x"' in elsewhere
    for name in ("collection", "endpoint", "datasette", "params"):
        odd = get(datasette, "/-/vibes/notes", q="cats", **{name: "x"})
        assert odd.status_code == 400 and f"Unknown parameter &#39;{name}&#39;" in odd.text


def test_cors_reaches_vibes_own_answers(notes, db_path):
    from vibes.web.serve import make_datasette

    shared = make_datasette([db_path], cors=True)
    for path in ("/-/vibes/notes/search.json?q=cats", "/-/vibes.json", "/-/vibes/nope/search.json"):
        response = get(shared, path)
        assert response.headers["access-control-allow-origin"] == "*", path
    assert "access-control-allow-origin" not in get(datasette_for(db_path), "/-/vibes.json").headers


def image_bytes(mode: str, kind: str, color: int = 0) -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new(mode, (300, 200), color).save(output, kind)
    return output.getvalue()


def test_thumbnails_of_every_kind_of_photo_and_nothing_that_only_looks_like_one(
    db_path, test_plugin
):
    from PIL import Image

    photos = vibes.Database(db_path).collection("photos", "hash")
    photos.embed("cmyk.jpg", image_bytes("CMYK", "JPEG"), store=True)
    photos.embed("grey16.png", image_bytes("I;16", "PNG", 40000), store=True)
    photos.embed("palette.gif", image_bytes("P", "GIF"), store=True)
    photos.embed(
        "bmw.txt", b"BMW is a car maker from Munich, <script>alert(1)</script>", store=True
    )
    datasette = datasette_for(db_path)
    for item in ("cmyk.jpg", "grey16.png", "palette.gif"):
        small = get(datasette, "/-/vibes/photos/image", id=item, size="64")
        assert small.status_code == 200, (item, small.text)
        assert max(Image.open(io.BytesIO(small.content)).size) == 64
    grey = Image.open(io.BytesIO(get(datasette, "/-/vibes/photos/image", id="grey16.png",
                                     size="64").content))  # fmt: skip
    assert grey.getpixel((0, 0)) == 40000 // 256  # scaled, not clipped to white
    assert get(datasette, "/-/vibes/photos/image", id="cmyk.jpg", size="²").status_code == 400
    text = get(datasette, "/-/vibes/photos/image", id="bmw.txt")
    assert text.status_code == 404 and "no stored image" in text.json()["error"]
    assert "image?id=bmw.txt" not in get(datasette, "/-/vibes/photos", id="cmyk.jpg").text


def test_a_slow_where_is_stopped_and_rerankers_are_only_registered_ones(notes, db_path):
    datasette = datasette_for(db_path)
    endless = (
        "(with recursive c(x) as (select 1 union all select x + 1 from c where x < 300000000) "
        "select count(*) from c) > 0"
    )
    stopped = get(datasette, "/-/vibes/notes/search.json", q="cats", where=endless)
    assert stopped.status_code == 400 and "took longer than 1 s" in stopped.json()["error"]
    # The connection is usable again at once.
    assert get(datasette, "/-/vibes/notes/search.json", q="cats", where="1 = 1").status_code == 200
    for path in ("/etc", "~", "/root/.ssh"):
        probed = get(datasette, "/-/vibes/notes/search.json", q="cats", rerank=path)
        assert probed.status_code == 400
        assert "registered re-ranker's name here" in probed.json()["error"]
        assert "root" not in probed.json()["error"].replace(path, "")


def test_databases_an_actor_may_not_see_are_passed_over(notes, db_path, tmp_path):
    hidden = str(tmp_path / "hidden.db")
    vibes.Database(hidden).collection("secret", "hash").embed("s", "a secret cat", store=True)
    vibes.Database(hidden).collection("notes", "hash").embed("h", "hidden cats", store=True)
    # The hidden database first: a search falls through to the one the actor may see.
    datasette = datasette_for(hidden, db_path, databases={"hidden": {"allow": False}})
    found = get(datasette, "/-/vibes/notes/search.json", q="cats")
    assert found.status_code == 200 and "h" not in [hit["id"] for hit in found.json()]
    secret = get(datasette, "/-/vibes/secret/search.json", q="cats")
    assert secret.status_code == 404 and "No collection 'secret'" in secret.json()["error"]
    assert [e["database"] for e in get(datasette, "/-/vibes.json").json()] == ["test"]


def test_asking_is_off_in_a_datasette_that_did_not_turn_it_on(notes, db_path, fake_llm):
    plain = datasette_for(db_path, plugins={"vibes": {}})
    refused = get(plain, "/-/vibes/notes/ask.json", q="cats")
    assert refused.status_code == 403 and "Asking is off" in refused.json()["error"]
    page = get(plain, "/-/vibes/notes", q="cats")
    assert page.status_code == 200 and 'name="ask"' not in page.text
    assert get(plain, "/-/vibes/notes", q="cats", ask="1").status_code == 403
    allowed = datasette_for(db_path, plugins={"vibes": {"ask": True}})
    assert get(allowed, "/-/vibes/notes/ask.json", q="cats", min_score="-1").status_code == 200

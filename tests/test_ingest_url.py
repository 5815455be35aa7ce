"""`vibes embed-multi COLLECTION URL`: rows from a real Datasette, and from a small server
that misbehaves on purpose (HTTP errors, silence, loops)."""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from checks import one_line_error

import vibes
from vibes.ingest import read_url

ROWS = 23  # more than four pages of five
PAGE_SIZE = 5


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 never go through a proxy set in the environment."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def datasette(tmp_path_factory):
    """A real `datasette serve` on 127.0.0.1 over a file made here, five rows a page."""
    pytest.importorskip("datasette", reason="datasette is in the test extra")
    path = tmp_path_factory.mktemp("datasette") / "blog.db"
    conn = sqlite3.connect(path)
    conn.execute("create table posts (id integer primary key, title text, body text, url text)")
    conn.executemany(
        "insert into posts values (?, ?, ?, ?)",
        [(n, f"Title {n}", f"body of post {n}", f"https://blog/{n}") for n in range(1, ROWS + 1)],
    )
    conn.execute("create table notes (title text, body text)")  # no primary key: rowid
    conn.executemany(
        "insert into notes values (?, ?)", [(f"Note {n}", f"note text {n}") for n in range(1, 8)]
    )
    conn.commit()
    conn.close()
    port = free_port()
    command = [sys.executable, "-m", "datasette", "serve", str(path), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--setting", "default_page_size", str(PAGE_SIZE)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 60
    while True:
        try:
            with opener.open(f"{base}/-/versions.json", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _, errors = server.communicate()
                pytest.fail(f"datasette did not start: {errors.decode()[-2000:]}")
            time.sleep(0.2)
    yield f"{base}/blog"
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def stored(db_path, collection="posts"):
    conn = sqlite3.connect(db_path)
    found = {
        row[0]: (row[1], json.loads(row[2]) if row[2] else None)
        for row in conn.execute(
            "select e.id, e.content, e.metadata from embeddings e "
            "join collections c on c.id = e.collection_id where c.name = ?",
            (collection,),
        )
    }
    conn.close()
    return found


EXPECTED = {
    str(n): (f"Title {n} body of post {n}", {"url": f"https://blog/{n}"})
    for n in range(1, ROWS + 1)
}

SHAPES = [
    "posts.json?_shape=objects",  # {"rows": [{...}], "next_url": ...}
    "posts.json",  # {"rows": [[...]], "columns": [...], "next_url": ...}
    "posts.json?_shape=array",  # [{...}], the next page in a Link header
    "posts.json?_shape=array&_nl=on",  # JSON lines, the next page in a Link header
    "posts.csv?_stream=on",  # CSV, every row in one streamed response
]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_row_of_a_datasette_table_arrives_once(
    invoke, datasette, db_path, shape, test_plugin
):
    url = f"{datasette}/{shape}"
    ids = [str(values["id"]) for _, values in read_url(url)]
    assert ids == [str(n) for n in range(1, ROWS + 1)]  # each once, in order
    result = invoke(
        ["embed-multi", "posts", url, "--metadata-column", "url", "--store", "-m", "hash"]
        + ["--batch-size", "4", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"Embedded {ROWS}, skipped 0 unchanged in collection 'posts'"
    assert stored(db_path) == EXPECTED


def test_pages_are_followed_one_at_a_time(datasette):
    rows = read_url(f"{datasette}/posts.json?_shape=objects")
    iterator = iter(rows)
    for _ in range(PAGE_SIZE):
        next(iterator)
    assert rows.pages == 1  # the next page is asked for only when its rows are needed
    assert rows.total == ROWS  # Datasette's count, for the progress bar
    assert len(list(iterator)) == ROWS - PAGE_SIZE
    assert rows.pages == 5
    array = read_url(f"{datasette}/posts.json?_shape=array")
    assert len(list(array)) == ROWS and array.total is None and array.pages == 5


def test_id_and_columns_as_for_a_file(invoke, datasette, db_path, test_plugin):
    # A table without a primary key: Datasette's first column is "rowid", the ID.
    result = invoke(
        ["embed-multi", "notes", f"{datasette}/notes.json?_shape=objects", "--store", "-m", "hash"]
        + ["-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert stored(db_path, "notes") == {
        str(n): (f"Note {n} note text {n}", None) for n in range(1, 8)
    }
    # --id-column, --content-column and --prefix as for a file.
    result = invoke(
        ["embed-multi", "titles", f"{datasette}/posts.json", "--id-column", "url", "--store"]
        + ["--content-column", "title", "--prefix", "p:", "-m", "hash", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    titles = stored(db_path, "titles")
    assert len(titles) == ROWS
    assert titles["p:https://blog/7"] == ("Title 7", None)


def test_rerun_embeds_nothing(invoke, datasette, db_path, test_plugin, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    args = ["embed-multi", "posts", f"{datasette}/posts.json?_shape=objects", "-m", "hash"]
    assert invoke([*args, "-d", db_path]).exit_code == 0
    again = invoke([*args, "-d", db_path])
    assert again.exit_code == 0, again.output
    assert f"Embedded 0, skipped {ROWS} unchanged" in again.stderr
    assert sum(int(n) for n in log.read_text().split()) == ROWS  # the model ran once per row


@pytest.mark.parametrize(
    "path, fragments",
    [
        ("nope.json", ["nope.json: HTTP 404 Not Found: Table not found"]),
        ("posts", ["posts: not JSON (content type text/html", "give --format csv"]),
    ],
)
def test_datasette_errors_are_one_line(invoke, datasette, db_path, test_plugin, path, fragments):
    result = invoke(["embed-multi", "posts", f"{datasette}/{path}", "-m", "hash", "-d", db_path])
    one_line_error(result, *fragments)
    assert not vibes.Database(db_path).has_collection("posts")


# -- a server that misbehaves on purpose ---------------------------------------------------


class Misbehaving(BaseHTTPRequestHandler):
    """Pages of five rows at /pages/N.json (N = 1..3); page 3 fails while ``broken``."""

    broken = True
    #: (path, Authorization header or None) of each request under /private/ and /open/.
    authorizations: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def send(self, status: int, body: bytes, content_type: str, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path.startswith(("/private/", "/open/")):
            return self.private()
        if self.path.startswith("/pages/"):
            number = int(self.path.split("/")[-1].split(".")[0])
            if number == 3 and Misbehaving.broken:
                return self.send(503, b"busy", "text/plain")
            rows = [{"id": f"r{number}-{n}", "text": f"row {n} of page {number}"} for n in range(5)]
            # Relative after page 1 (as a proxied server may give), absolute after page 2.
            next_url = {1: "2.json", 2: f"{base}/pages/3.json"}.get(number)
            page = {"rows": rows, "next_url": next_url}
            return self.send(200, json.dumps(page).encode(), "application/json")
        if self.path.startswith("/lines"):
            number = int(self.path[len("/lines") :] or 1)
            body = "".join(json.dumps({"id": f"l{number}-{n}", "t": "text"}) + "\n" for n in (1, 2))
            link = [("Link", f'</lines{number + 1}>; rel="next"')] if number < 3 else []
            return self.send(200, body.encode(), "text/plain", link)
        if self.path == "/loop.json":
            link = [("Link", '</loop.json>; rel="next"')]
            return self.send(200, b'[{"id": "x", "t": "again"}]', "application/json", link)
        if self.path == "/silent":
            time.sleep(3)
            return self.send(200, b"[]", "application/json")
        if self.path == "/nan.jsonl":
            return self.send(200, b'{"id": "a", "t": "x", "n": NaN}\n', "application/json")
        return self.send(404, b"<h1>not here</h1>", "text/html")

    def private(self):
        """/private/basic/N.json wants ann's password (which holds a ':'), /private/token.json
        a bearer token and an X-Team header; page 2 of the first links to the same server
        under another name (localhost), at /open/, which wants nothing and says what it
        got. /private/moved redirects to /private/token.json, /private/away to the same
        under the name localhost."""
        auth = self.headers.get("Authorization")
        Misbehaving.authorizations.append((self.path, auth))
        port = self.server.server_port
        password = base64.b64encode(b"ann:s3:cret").decode()
        if self.path.startswith("/private/basic/"):
            if auth != f"Basic {password}":
                return self.send(401, b'{"error": "Log in first"}', "application/json")
            number = int(self.path.split("/")[-1].split(".")[0])
            rows = [{"id": f"b{number}-{n}", "text": f"private row {n}"} for n in range(3)]
            following = {1: "2.json", 2: f"http://localhost:{port}/open/3.json"}.get(number)
            body = json.dumps({"rows": rows, "next_url": following}).encode()
            return self.send(200, body, "application/json")
        if self.path == "/private/token.json":
            if auth != "Bearer dstok_t0ken" or self.headers.get("X-Team") != "blue":
                return self.send(403, b'{"error": "Permission denied"}', "application/json")
            body = b'[{"id": "t1", "text": "for token holders"}]'
            return self.send(200, body, "application/json")
        if self.path == "/private/moved":
            return self.send(302, b"", "text/plain", [("Location", "/private/token.json")])
        if self.path == "/private/away":  # the same server under another name
            away = f"http://localhost:{port}/private/token.json"
            return self.send(302, b"", "text/plain", [("Location", away)])
        rows = [{"id": "o3-0", "text": "an open page"}]
        return self.send(200, json.dumps({"rows": rows}).encode(), "application/json")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (the timeout test) breaks the pipe: expected


@pytest.fixture
def misbehaving():
    Misbehaving.broken = True
    server = QuietServer(("127.0.0.1", 0), Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_failing_page_keeps_the_saved_batches_and_a_rerun_resumes(
    invoke, misbehaving, db_path, test_plugin
):
    args = ["embed-multi", "c", f"{misbehaving}/pages/1.json", "-m", "hash", "--batch-size", "5"]
    result = invoke([*args, "-d", db_path])
    one_line_error(
        result, "/pages/3.json: HTTP 503 Service Unavailable", "10 items before it were saved"
    )
    assert vibes.Database(db_path).collection("c").count() == 10
    Misbehaving.broken = False
    resumed = invoke([*args, "-d", db_path])
    assert resumed.exit_code == 0, resumed.output
    assert "Embedded 5, skipped 10 unchanged" in resumed.stderr


def test_json_lines_pages_through_relative_link_headers(invoke, misbehaving, db_path, test_plugin):
    result = invoke(["embed-multi", "c", f"{misbehaving}/lines", "-m", "hash", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert sorted(item["id"] for item in vibes.Database(db_path).collection("c").items()) == [
        f"l{page}-{n}" for page in (1, 2, 3) for n in (1, 2)
    ]


def test_network_and_content_errors_are_one_line(
    invoke, misbehaving, db_path, test_plugin, monkeypatch
):
    monkeypatch.setattr("vibes.ingest.url.TIMEOUT", 0.5)
    cases = [
        (f"{misbehaving}/silent", ["/silent: no answer within 0.5 seconds"]),
        (f"{misbehaving}/loop.json", ["/loop.json: the next page is a page read before"]),
        (f"{misbehaving}/missing", ["/missing: HTTP 404 Not Found"]),
        (f"{misbehaving}/nan.jsonl", ["nan.jsonl line 1: invalid JSON: NaN is not a JSON value"]),
        (f"http://127.0.0.1:{free_port()}/x.json", ["Cannot reach http://127.0.0.1:"]),
        ("http://", ["http://"]),
    ]
    for url, fragments in cases:
        result = invoke(["embed-multi", "c", url, "-m", "hash", "-d", db_path])
        one_line_error(result, *fragments)
    result = invoke(
        ["embed-multi", "c", f"{misbehaving}/lines", "--encoding", "nope", "-d", db_path]
    )
    one_line_error(result, "/lines: unknown encoding 'nope'")


def test_a_password_in_the_url_goes_to_its_server_alone_and_is_never_shown(
    invoke, misbehaving, db_path, test_plugin
):
    Misbehaving.authorizations = []
    where = misbehaving.replace("http://", "")
    private = f"{misbehaving}/private/basic/1.json"
    refused = invoke(["embed-multi", "c", private, "-m", "hash", "-d", db_path])
    one_line_error(refused, "/private/basic/1.json: HTTP 401 Unauthorized: Log in first")
    wrong = f"http://ann:wr0ng-pw@{where}/private/basic/1.json"
    refused = invoke(["embed-multi", "c", wrong, "-m", "hash", "-d", db_path])
    one_line_error(refused, f"http://{where}/private/basic/1.json: HTTP 401")
    assert "wr0ng-pw" not in refused.output and "ann:" not in refused.output
    # A '/' or '#' in a password must be quoted: unquoted, it ends the host part early,
    # and the URL is refused without being shown.
    for unquoted in ("pa/ss-w0rd", "pa#ss-w0rd"):
        broken = f"http://ann:{unquoted}@{where}/private/basic/1.json"
        result = invoke(["embed-multi", "c", broken, "-m", "hash", "-d", db_path])
        one_line_error(result, "The URL's host and port do not parse", "%2F")
        assert "ss-w0rd" not in result.output
    right = f"http://ann:s3%3Acret@{where}/private/basic/1.json"  # ':' quoted in a password
    result = invoke(["embed-multi", "c", right, "-m", "hash", "-d", db_path])
    assert result.exit_code == 0, result.output
    ids = sorted(item["id"] for item in vibes.Database(db_path).collection("c").items())
    assert ids == [f"b{page}-{n}" for page in (1, 2) for n in range(3)] + ["o3-0"]
    # Page 2 was on the same server (a relative link): it got the password. Page 3 was
    # linked under another host name: a server of its own, as far as anyone can tell.
    sent = dict(Misbehaving.authorizations[-3:])
    assert sent["/private/basic/2.json"] == sent["/private/basic/1.json"] is not None
    assert sent["/open/3.json"] is None


def test_headers_go_with_each_request_and_never_after_a_redirect(
    invoke, misbehaving, db_path, test_plugin, tmp_path
):
    Misbehaving.authorizations = []
    url = f"{misbehaving}/private/token.json"
    token = ["--header", "Authorization: Bearer dstok_t0ken", "--header", "X-Team:blue"]
    base = ["embed-multi", "c", url, "-m", "hash", "-d", db_path]
    one_line_error(invoke(base), "/private/token.json: HTTP 403 Forbidden: Permission denied")
    result = invoke([*base, *token])
    assert result.exit_code == 0, result.output
    assert [item["id"] for item in vibes.Database(db_path).collection("c").items()] == ["t1"]
    # A redirect on the same server keeps them; one to another host does not.
    moved = invoke(["embed-multi", "m", f"{misbehaving}/private/moved", *token, "-d", db_path])
    assert moved.exit_code == 0, moved.output
    assert Misbehaving.authorizations[-1] == ("/private/token.json", "Bearer dstok_t0ken")
    away = invoke(["embed-multi", "c", f"{misbehaving}/private/away", *token, "-d", db_path])
    one_line_error(away, "HTTP 403")
    assert Misbehaving.authorizations[-1] == ("/private/token.json", None)
    # Headers given through the API are checked too, without showing their values.
    with pytest.raises(vibes.errors.InputError, match="'Authorization' holds a line break") as e:
        read_url(url, headers={"Authorization": "Bearer dstok_t0ken\nX-Other: 1"})
    assert "dstok_t0ken" not in str(e.value)
    # A header that is not one is a usage error that never shows what was given.
    for bad in ("Authorization Bearer dstok_t0ken", ": dstok_t0ken", "Bad Name: dstok_t0ken"):
        wrong = invoke([*base, "--header", bad])
        assert wrong.exit_code == 2 and "A header is 'Name: value'" in wrong.output
        assert "dstok_t0ken" not in wrong.output
    items = tmp_path / "items.csv"
    items.write_text("id,text\n1,hello\n")
    not_a_url = invoke(["embed-multi", "c", str(items), *token, "-d", db_path])
    assert not_a_url.exit_code == 2 and "--header works with a URL input only" in not_a_url.output


def test_url_options_that_apply_to_files_only_are_usage_errors(invoke, db_path):
    result = invoke(["embed-multi", "c", "http://127.0.0.1:9/x.json", "--prune", "-d", db_path])
    assert result.exit_code == 2


def test_reading_a_url_imports_nothing_at_start_up():
    code = (
        "import sys, vibes.cli, vibes.ingest; "
        "print(any(m in sys.modules for m in ('urllib.request', 'http.client')))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.stdout.strip() == "False", output.stderr


def test_progress_on_a_terminal_counts_against_datasettes_total(datasette, db_path, test_plugin):
    from test_embed_multi import on_a_terminal

    command = [sys.executable, "-m", "vibes", "embed-multi", "posts"]
    command += [f"{datasette}/posts.json?_shape=objects", "-m", "hash", "-d", db_path]
    code, text = on_a_terminal(command, delay="0.01")
    assert code == 0, text
    assert f"{ROWS}/{ROWS}" in text
    assert f"Embedded {ROWS}, skipped 0 unchanged" in text

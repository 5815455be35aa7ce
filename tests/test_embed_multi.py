"""`vibes embed-multi`: every input format, files, SQL, and re-runs that embed nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import vibes


def rows(db_path, collection="items"):
    conn = sqlite3.connect(db_path)
    return {
        row[0]: {"content": row[1], "metadata": json.loads(row[2]) if row[2] else None}
        for row in conn.execute(
            "select e.id, e.content, e.metadata from embeddings e "
            "join collections c on c.id = e.collection_id where c.name = ?",
            (collection,),
        )
    }


def model_calls(log: Path) -> list[int]:
    return [int(n) for n in log.read_text().split()] if log.exists() else []


CSV = "id,title,body\n1,Cats,Cats purr\n2,Dogs,Dogs bark\n"
TSV = "id\ttitle\tbody\n1\tCats\tCats purr\n2\tDogs\tDogs bark\n"
JSON_ARRAY = json.dumps(
    [
        {"id": 1, "title": "Cats", "body": "Cats purr"},
        {"id": 2, "title": "Dogs", "body": "Dogs bark"},
    ]
)
NL = JSON_ARRAY[1:-1].replace("}, {", "}\n{") + "\n"


@pytest.mark.parametrize(
    "filename, text",
    [("in.csv", CSV), ("in.tsv", TSV), ("in.json", JSON_ARRAY), ("in.jsonl", NL), ("in.json", NL)],
)
def test_formats_from_a_file_by_extension_or_detection(
    invoke, tmp_path, db_path, test_plugin, filename, text
):
    path = tmp_path / filename
    path.write_text(text)
    result = invoke(["embed-multi", "items", path, "-m", "hash", "--store", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert rows(db_path) == {
        "1": {"content": "Cats Cats purr", "metadata": None},
        "2": {"content": "Dogs Dogs bark", "metadata": None},
    }


@pytest.mark.parametrize(
    "fmt, text", [("csv", CSV), ("tsv", TSV), ("json", JSON_ARRAY), ("nl", NL)]
)
def test_formats_from_stdin(invoke, db_path, test_plugin, fmt, text):
    for args in (["--format", fmt], []):  # explicit, then detected
        result = invoke(
            ["embed-multi", "items", "-", "-m", "hash", "--store", "-d", db_path, *args],
            input=text,
        )
        assert result.exit_code == 0, result.output
        assert rows(db_path)["2"]["content"] == "Dogs Dogs bark"


def test_numbers_and_nested_values_are_text_not_a_crash(invoke, db_path, test_plugin):
    data = [{"id": 7, "price": 9.5, "count": 3, "tags": ["a", "b"], "extra": {"k": True}}]
    result = invoke(
        ["embed-multi", "items", "-", "-m", "hash", "--store", "-d", db_path],
        input=json.dumps(data),
    )
    assert result.exit_code == 0, result.output
    assert rows(db_path) == {"7": {"content": '9.5 3 ["a", "b"] {"k": true}', "metadata": None}}


def test_column_options_choose_id_content_and_metadata(invoke, db_path, test_plugin):
    data = "slug,title,body,url,year\ncats,Cats,Cats purr,http://c,2020\n"
    result = invoke(
        ["embed-multi", "items", "-", "--format", "csv", "-m", "hash", "--store", "-d", db_path]
        + ["--id-column", "slug", "--content-column", "body", "--metadata-column", "url"]
        + ["--metadata-column", "year"],
        input=data,
    )
    assert result.exit_code == 0, result.output
    assert rows(db_path) == {
        "cats": {"content": "Cats purr", "metadata": {"url": "http://c", "year": "2020"}}
    }
    bad = invoke(
        ["embed-multi", "items", "-", "--format", "csv", "-m", "hash", "-d", db_path]
        + ["--metadata-column", "nope"],
        input=data,
    )
    assert bad.exit_code == 1
    assert "no column named 'nope'" in bad.output


def test_prefix_prepend_and_batch_size(invoke, tmp_path, db_path, test_plugin, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    text = "".join(json.dumps({"id": i, "text": f"item number {i}"}) + "\n" for i in range(10))
    result = invoke(
        ["embed-multi", "items", "-", "-m", "hash", "--store", "-d", db_path]
        + ["--prefix", "doc-", "--prepend", "passage: ", "--batch-size", "4"],
        input=text,
    )
    assert result.exit_code == 0, result.output
    stored = rows(db_path)
    assert sorted(stored) == sorted(f"doc-{i}" for i in range(10))
    assert stored["doc-3"]["content"] == "passage: item number 3"
    assert model_calls(log) == [4, 4, 2]


def test_rerun_embeds_nothing_and_says_so(invoke, tmp_path, db_path, test_plugin, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    path = tmp_path / "in.csv"
    path.write_text(CSV)
    first = invoke(["embed-multi", "items", path, "-m", "hash", "-d", db_path])
    assert "Embedded 2, skipped 0 unchanged" in first.stderr
    second = invoke(["embed-multi", "items", path, "-d", db_path])
    assert second.exit_code == 0
    assert "Embedded 0, skipped 2 unchanged" in second.stderr
    assert model_calls(log) == [2]
    # One changed row is embedded again, alone.
    path.write_text(CSV.replace("Dogs bark", "Dogs howl"))
    third = invoke(["embed-multi", "items", path, "-d", db_path])
    assert "Embedded 1, skipped 1 unchanged" in third.stderr
    assert model_calls(log) == [2, 1]


def test_rerun_with_store_or_new_metadata_updates_without_embedding(
    invoke, tmp_path, db_path, test_plugin, monkeypatch
):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta"}\n')
    invoke(["embed-multi", "items", path, "-m", "hash", "-d", db_path])
    assert rows(db_path)["a"] == {"content": None, "metadata": None}
    stored = invoke(["embed-multi", "items", path, "--store", "-d", db_path])
    assert "updated 2 (text or metadata)" in stored.stderr
    assert rows(db_path)["a"]["content"] == "alpha"
    path.write_text(
        '{"id": "a", "text": "alpha", "metadata": {"v": 2}}\n{"id": "b", "text": "beta"}\n'
    )
    tagged = invoke(["embed-multi", "items", path, "--store", "-d", db_path])
    assert "updated 1 (text or metadata)" in tagged.stderr
    assert "skipped 1 unchanged" in tagged.stderr
    assert rows(db_path)["a"] == {"content": "alpha", "metadata": {"v": 2}}
    assert model_calls(log) == [2]


def test_identical_content_under_new_ids_reuses_vectors(
    tmp_path, db_path, test_plugin, monkeypatch
):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    collection = vibes.Database(db_path).collection("items", model="hash")
    stats = collection.embed_multi([("a", "same text"), ("b", "same text"), ("c", "other")])
    assert (stats.embedded, stats.reused) == (2, 1)
    stats = collection.embed_multi([("d", "same text")])
    assert (stats.embedded, stats.reused) == (0, 1)
    assert model_calls(log) == [2]
    assert collection.vector("d") == collection.vector("a")
    assert collection.count() == 4  # llm would have dropped b and d (same hash)


def test_files_with_recursive_glob_and_relative_ids(invoke, tmp_path, db_path, test_plugin):
    docs = tmp_path / "docs"
    (docs / "sub" / "deeper").mkdir(parents=True)
    (docs / "a.md").write_text("alpha file")
    (docs / "sub" / "b.md").write_text("beta file")
    (docs / "sub" / "deeper" / "c.md").write_text("gamma file")
    (docs / "sub" / "skip.txt").write_text("not markdown")
    (docs / "empty.md").write_text("")
    result = invoke(
        ["embed-multi", "items", "--files", docs, "**/*.md", "-m", "hash", "--store", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 empty files" in result.stderr
    assert rows(db_path) == {
        "a.md": {"content": "alpha file", "metadata": None},
        "sub/b.md": {"content": "beta file", "metadata": None},
        "sub/deeper/c.md": {"content": "gamma file", "metadata": None},
    }


def test_files_encodings_fall_back_in_order(invoke, tmp_path, db_path, test_plugin):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin.txt").write_bytes("café crème".encode("latin-1"))
    (docs / "utf.txt").write_text("naïve", encoding="utf-8")
    result = invoke(
        ["embed-multi", "items", "--files", docs, "*.txt", "-m", "hash", "--store", "-d", db_path]
        + ["--encoding", "utf-8", "--encoding", "latin-1"]
    )
    assert result.exit_code == 0, result.output
    assert rows(db_path)["latin.txt"]["content"] == "café crème"
    assert rows(db_path)["utf.txt"]["content"] == "naïve"


def test_files_binary(invoke, tmp_path, db_path, test_plugin):
    docs = tmp_path / "bin"
    docs.mkdir()
    (docs / "x.bin").write_bytes(b"\x00\xff binary words")
    result = invoke(
        ["embed-multi", "blobs", "--files", docs, "*.bin", "--binary", "-m", "hash", "--store"]
        + ["-d", db_path]
    )
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(db_path)
    assert conn.execute("select content, content_blob from embeddings").fetchone() == (
        None,
        b"\x00\xff binary words",
    )


def test_sql_with_attach(invoke, tmp_path, db_path, test_plugin):
    blog = tmp_path / "blog.db"
    conn = sqlite3.connect(blog)
    conn.execute("create table posts (id integer primary key, title text, body text)")
    conn.executemany(
        "insert into posts values (?, ?, ?)", [(1, "Hello", "first post"), (2, "Again", "more")]
    )
    conn.commit()
    conn.close()
    result = invoke(
        ["embed-multi", "posts", "--sql", "select id, title, body from blog.posts", "--store"]
        + ["--attach", "blog", blog, "-m", "hash", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert rows(db_path, "posts") == {
        "1": {"content": "Hello first post", "metadata": None},
        "2": {"content": "Again more", "metadata": None},
    }
    # --sql against the database itself, as llm does.
    again = invoke(
        ["embed-multi", "copy", "--sql", "select id, content from embeddings", "-m", "hash"]
        + ["-d", db_path, "--store"]
    )
    assert again.exit_code == 0, again.output
    assert rows(db_path, "copy")["1"]["content"] == "Hello first post"


def test_python_api_embed_multi_accepts_tuples_dicts_and_items(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("items", model="hash")
    stats = collection.embed_multi(
        [
            ("t", "a tuple"),
            ("m", "with metadata", {"k": 1}),
            {"id": "d", "content": "a dict", "metadata": {"k": 2}},
            vibes.Item("i", "an item"),
        ],
        store=True,
        batch_size=2,
    )
    assert stats.embedded == 4
    assert collection.get("m").metadata == {"k": 1}
    assert collection.get("d").content == "a dict"
    assert collection.count() == 4


def on_a_terminal(command: list[str], stdin=None, delay: str = "0.05") -> tuple[int, str]:
    """Run ``command`` with stderr on a pseudo-terminal; its exit status and what it showed."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    env = {**os.environ, "VIBES_TEST_DELAY": delay, "COLUMNS": "120"}
    process = subprocess.Popen(
        command, stdin=stdin, stderr=follower, stdout=subprocess.PIPE, env=env
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed when the process exited
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(leader)
    return process.returncode, output.decode()


def test_progress_bar_with_count_and_eta_on_a_terminal_only(tmp_path, db_path, test_plugin, run):
    import sys

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": i, "t": f"text {i}"}) + "\n" for i in range(50)))
    command = [sys.executable, "-m", "vibes", "embed-multi", "c", str(data), "-m", "hash"]
    command += ["--batch-size", "10", "-d", db_path]
    code, text = on_a_terminal(command)
    assert code == 0, text
    assert "Embedding" in text and "50/50" in text
    assert "Embedded 50" in text
    # Not a terminal: no progress bar, just the summary line.
    piped = run(["embed-multi", "c2", data, "-m", "hash", "-d", db_path])
    assert piped.stderr.strip().splitlines() == [
        "Embedded 50, skipped 0 unchanged in collection 'c2'"
    ]


def test_progress_count_for_stdin_whose_length_is_unknown(tmp_path, db_path, test_plugin):
    import sys

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": i, "t": f"text {i}"}) + "\n" for i in range(30)))
    command = [sys.executable, "-m", "vibes", "embed-multi", "c", "-", "-m", "hash"]
    command += ["--batch-size", "10", "-d", db_path]
    with open(data, "rb") as stdin:
        code, text = on_a_terminal(command, stdin=stdin)
    assert code == 0, text
    assert "Traceback" not in text
    assert "Embedding" in text and "30" in text
    assert "Embedded 30, skipped 0 unchanged" in text


EMPTY_FIELD = "id,title\n1,Cats\n2,\n3,Dogs\n"


def test_an_empty_field_stops_the_run_and_keeps_what_was_saved(
    invoke, tmp_path, db_path, test_plugin
):
    path = tmp_path / "in.csv"
    path.write_text(EMPTY_FIELD)
    args = ["embed-multi", "items", path, "-m", "hash", "--batch-size", "1", "-d", db_path]
    result = invoke(args)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"{path} line 3: item '2' has empty content (--skip-empty skips such rows)" in line
    assert "1 items before it were saved" in line
    assert sorted(rows(db_path)) == ["1"]


def test_skip_empty_skips_and_counts_empty_rows(invoke, tmp_path, db_path, test_plugin):
    path = tmp_path / "in.csv"
    path.write_text(EMPTY_FIELD + "4,  \n")
    result = invoke(["embed-multi", "items", path, "-m", "hash", "--skip-empty", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert sorted(rows(db_path)) == ["1", "3"]
    assert result.stderr.strip() == (
        "Embedded 2, skipped 0 unchanged, "
        f"skipped 2 rows with empty content (the first: {path} line 3) in collection 'items'"
    )
    # The same from --sql.
    query = "select 'a' as id, '' as t union all select 'b', 'bee'"
    result = invoke(
        ["embed-multi", "sql", "--sql", query, "-m", "hash", "--skip-empty"] + ["-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert sorted(rows(db_path, "sql")) == ["b"]
    assert "skipped 1 row with empty content (the first: SQL row 1)" in result.stderr


def test_skip_empty_when_every_row_is_empty(invoke, db_path, test_plugin):
    result = invoke(
        ["embed-multi", "items", "-", "--format", "csv", "--skip-empty", "-d", db_path],
        input="id,t\n1,\n2,\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Nothing to embed: the input holds no items",
        "Skipped 2 rows with empty content (the first: stdin line 2)",
    ]


def test_skip_empty_is_for_rows_not_files(invoke, tmp_path, db_path):
    result = invoke(
        ["embed-multi", "c", "--files", tmp_path, "*.md", "--skip-empty", "-d", db_path]
    )
    assert result.exit_code == 2
    assert "empty files are always skipped" in result.output

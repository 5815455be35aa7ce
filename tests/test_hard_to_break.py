"""Edges where a user could lose data or get wrong answers: pruning only what the same
source wrote, repairing deleted chunks, repeated ids, NaN metadata, failed first writes,
reads that must not create, bad --files patterns, full disks."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from checks import one_line_error

import vibes
import vibes.ingest.files as files_module


def ids(db_path, collection="c"):
    conn = sqlite3.connect(db_path)
    try:
        return sorted(
            row[0]
            for row in conn.execute(
                "SELECT e.id FROM embeddings e JOIN collections c ON c.id = e.collection_id "
                "WHERE c.name = ?",
                (collection,),
            )
        )
    finally:
        conn.close()


def collection_names(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return sorted(row[0] for row in conn.execute("SELECT name FROM collections"))
    finally:
        conn.close()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


# -- pruning ------------------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path):
    directory = tmp_path / "docs"
    directory.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (directory / name).write_text(f"text of {name}")
    return directory


def test_prune_never_touches_items_from_other_sources(invoke, tmp_path, db_path, docs, test_plugin):
    jsonl = tmp_path / "items.jsonl"
    write_jsonl(jsonl, [{"id": "note-1", "text": "from jsonl"}, {"id": "x.txt", "text": "same"}])
    assert invoke(["embed-multi", "c", jsonl, "-m", "hash", "-d", db_path]).exit_code == 0
    result = invoke(["embed-multi", "c", "--files", docs, "*.txt", "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert "pruned" not in result.output
    assert ids(db_path) == ["a.txt", "b.txt", "c.txt", "note-1", "x.txt"]

    (docs / "b.txt").unlink()
    result = invoke(["embed-multi", "c", "--files", docs, "*.txt", "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert "pruned 1 item of deleted files" in result.output
    # The JSONL items (one named like a file) are still there; only b.txt went.
    assert ids(db_path) == ["a.txt", "c.txt", "note-1", "x.txt"]


def test_prune_dry_run_lists_and_changes_nothing(invoke, db_path, docs, test_plugin):
    invoke(["embed-multi", "c", "--files", docs, "*.txt", "-m", "hash", "-d", db_path])
    (docs / "a.txt").unlink()
    (docs / "c.txt").unlink()
    before = ids(db_path)
    args = ["embed-multi", "c", "--files", docs, "*.txt", "--prune", "--dry-run", "-d", db_path]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["a.txt", "c.txt"]
    assert "Would prune 2 items" in result.stderr
    assert ids(db_path) == before
    assert invoke(["embed-multi", "c", "--files", docs, "*.txt", "--dry-run"]).exit_code == 2


def test_prune_is_per_directory_and_prefix(invoke, tmp_path, db_path, docs, test_plugin):
    other = tmp_path / "other"
    other.mkdir()
    (other / "z.txt").write_text("other text")
    invoke(["embed-multi", "c", "--files", other, "*.txt", "-m", "hash", "-d", db_path])
    invoke(["embed-multi", "c", "--files", docs, "*.txt", "--prefix", "d/", "-d", db_path])
    # Pruning docs with another prefix, or another directory, removes nothing of these.
    result = invoke(["embed-multi", "c", "--files", docs, "*.txt", "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["a.txt", "b.txt", "c.txt", "d/a.txt", "d/b.txt", "d/c.txt", "z.txt"]
    for name in ("a.txt", "b.txt", "c.txt"):
        (docs / name).unlink()
    # Every file of the directory gone: the run has nothing to embed, and still prunes.
    args = ["embed-multi", "c", "--files", docs, "*.txt", "--prefix", "d/", "--prune"]
    result = invoke([*args, "-d", db_path])
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["a.txt", "b.txt", "c.txt", "z.txt"]


def test_prune_leaves_files_another_pattern_read(invoke, db_path, docs, test_plugin):
    (docs / "guide.md").write_text("a markdown guide")
    args = ["embed-multi", "c", "--files", docs]
    assert invoke([*args, "*.md", "-m", "hash", "-d", db_path]).exit_code == 0
    assert invoke([*args, "*.txt", "-d", db_path]).exit_code == 0
    # Pruning what '*.md' read leaves what '*.txt' read: those files are all still there.
    result = invoke([*args, "*.md", "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["a.txt", "b.txt", "c.txt", "guide.md"]
    (docs / "guide.md").unlink()
    assert invoke([*args, "*.md", "--prune", "-d", db_path]).exit_code == 0
    assert ids(db_path) == ["a.txt", "b.txt", "c.txt"]


def test_prune_is_refused_when_a_directory_cannot_be_read(
    invoke, db_path, docs, test_plugin, monkeypatch
):
    (docs / "sub").mkdir()
    (docs / "sub" / "deep.txt").write_text("deep text")
    args = ["embed-multi", "c", "--files", docs, "**/*.txt"]
    assert invoke([*args, "-m", "hash", "-d", db_path]).exit_code == 0
    real_list = files_module._list

    def unreadable(path):  # as for a directory without read permission (root ignores modes)
        if path.endswith("sub"):
            raise PermissionError(13, "Permission denied")
        return real_list(path)

    monkeypatch.setattr(files_module, "_list", unreadable)
    result = invoke([*args, "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert "not pruning: 1 directory that could not be read" in result.stderr
    assert "sub/deep.txt" in ids(db_path)


def test_prune_of_chunked_documents(invoke, db_path, docs, test_plugin):
    (docs / "a.txt").write_text("one two three four five six seven")
    args = ["embed-multi", "c", "--files", docs, "*.txt", "--chunk", "words", "-m", "hash"]
    assert invoke([*args, "-d", db_path]).exit_code == 0
    (docs / "a.txt").unlink()
    result = invoke([*args, "--prune", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["b.txt#1", "c.txt#1"]


# -- chunks deleted behind vibes' back are repaired --------------------------------------------


@pytest.mark.parametrize("how", ["vibes", "sql"])
def test_rerun_repairs_deleted_chunks(invoke, tmp_path, db_path, test_plugin, how):
    data = tmp_path / "doc.jsonl"
    write_jsonl(data, [{"id": "doc", "text": "one two three four five six seven eight nine"}])
    args = ["embed-multi", "c", data, "--chunk", "words", "-m", "hash", "--store", "-d", db_path]
    assert invoke(args).exit_code == 0
    assert ids(db_path) == ["doc#1", "doc#2", "doc#3"]
    if how == "vibes":
        assert invoke(["delete", "c", "doc#2", "-d", db_path]).exit_code == 0
    else:
        conn = sqlite3.connect(db_path)
        conn.execute("DELETE FROM embeddings WHERE id = 'doc#2'")
        conn.commit()
        conn.close()
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["doc#1", "doc#2", "doc#3"]
    # Only the missing chunk went through the model again.
    assert "Embedded 1," in result.output
    found = vibes.Database(db_path).collection("c").get("doc#2")
    assert found.content == "four five six"


# -- repeated ids and missing id keys ----------------------------------------------------------


@pytest.mark.parametrize("batch_size", ["2", "100"])
def test_repeated_ids_are_counted_and_named(run, tmp_path, db_path, test_plugin, batch_size):
    data = tmp_path / "items.jsonl"
    rows = [{"id": f"i{n}", "text": f"text {n}"} for n in range(5)]
    rows += [{"id": "i1", "text": "second i1"}, {"id": "i3", "text": "second i3"}]
    write_jsonl(data, rows)
    args = ["embed-multi", "c", data, "-m", "hash", "--batch-size", batch_size, "--store"]
    result = run([*args, "-d", db_path])
    assert result.returncode == 0, result.stderr
    assert "Warning: 2 items repeated an id given earlier" in result.stderr
    assert "'i1', 'i3'" in result.stderr
    # Counts add up: 7 input rows, each counted once.
    summary = "Embedded 7, skipped 0 unchanged, 2 of them repeated an earlier id (the last kept)"
    assert summary in result.stderr
    collection = vibes.Database(db_path).collection("c")
    assert collection.count() == 5
    assert collection.get("i1").content == "second i1"


def test_the_same_path_under_two_directories_is_reported(run, tmp_path, db_path, test_plugin):
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.txt").write_text(f"in {name}")
    args = ["embed-multi", "c", "-m", "hash", "-d", db_path]
    result = run([*args, "--files", tmp_path / "one", "*", "--files", tmp_path / "two", "*"])
    assert result.returncode == 0, result.stderr
    assert "1 item repeated an id" in result.stderr and "'same.txt'" in result.stderr


def test_a_jsonl_row_without_the_id_key_is_an_error(invoke, tmp_path, db_path, test_plugin):
    data = tmp_path / "items.jsonl"
    write_jsonl(data, [{"id": "a", "text": "alpha"}, {"text": "no id here"}])
    result = invoke(["embed-multi", "c", data, "-m", "hash", "-d", db_path])
    one_line_error(result, "line 2", "no 'id' key")
    assert "no id here" not in ids(db_path) if os.path.exists(db_path) else True


# -- metadata that JSON cannot hold ------------------------------------------------------------


def test_nan_and_infinity_metadata_are_refused_everywhere(invoke, tmp_path, db_path, test_plugin):
    assert invoke(["embed", "c", "keep", "-c", "kept", "-m", "hash", "-d", db_path]).exit_code == 0
    result = invoke(["embed", "c", "x", "-c", "hi", "--metadata", '{"a": NaN}', "-d", db_path])
    assert result.exit_code == 2 and "NaN is not a JSON value" in result.output
    data = tmp_path / "items.jsonl"
    data.write_text('{"id": "y", "text": "hi", "metadata": {"score": Infinity}}\n')
    one_line_error(invoke(["embed-multi", "c", data, "-d", db_path]), "line 1", "Infinity")
    csv_file = tmp_path / "items.csv"
    csv_file.write_text('id,text,metadata\nz,hi,"{""score"": -Infinity}"\n')
    one_line_error(invoke(["embed-multi", "c", csv_file, "-d", db_path]), "metadata")
    collection = vibes.Database(db_path).collection("c")
    with pytest.raises(vibes.InputError, match="cannot be stored as JSON"):
        collection.embed("w", "hi", metadata={"score": float("nan")})
    assert ids(db_path) == ["keep"]
    # Filters keep working on the collection.
    result = invoke(["similar", "c", "-c", "kept", "--filter", "a=1", "-d", db_path])
    assert result.exit_code == 0, result.output


# -- failures and reads leave nothing behind --------------------------------------------------


def test_a_failed_first_write_leaves_no_collection(invoke, tmp_path, db_path, test_plugin):
    data = tmp_path / "items.jsonl"
    write_jsonl(data, [{"id": "a", "text": "FAIL now"}])
    result = invoke(["embed-multi", "c", data, "-m", "hash", "-d", db_path])
    assert result.exit_code == 1
    assert collection_names(db_path) == []
    # So the next attempt may choose another model and distance.
    write_jsonl(data, [{"id": "a", "text": "works"}])
    args = ["embed-multi", "c", data, "-m", "resizable-test", "--distance", "dot", "-d", db_path]
    assert invoke(args).exit_code == 0
    db = vibes.Database(db_path)
    assert (db.collection("c").model_id, db.collection("c").distance) == ("resizable-test", "dot")


@pytest.mark.parametrize(
    "command",
    [
        ["collections"],
        ["collections", "export", "c"],
        ["similar", "c", "-c", "hello"],
        ["index", "c"],
        ["delete", "c", "x"],
        ["collections", "delete", "c"],
    ],
)
def test_reads_never_create_a_database(invoke, tmp_path, command, monkeypatch):
    missing = tmp_path / "typo" / "nowhere.db"
    result = invoke([*command, "-d", tmp_path / "nowhere.db"])
    one_line_error(result, "No database at")
    assert not (tmp_path / "nowhere.db").exists()
    monkeypatch.setenv("VIBES_HOME", str(missing.parent))
    result = invoke(command)
    one_line_error(result, "No vibes database yet")
    assert not missing.parent.exists()


def test_a_new_collection_is_created_once_under_concurrency(db_path, test_plugin):
    db = vibes.Database(db_path)
    errors = []

    def write(number):
        try:
            db.collection("shared", model="hash").embed(f"item-{number}", f"text {number}")
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert collection_names(db_path) == ["shared"]
    assert ids(db_path, "shared") == sorted(f"item-{n}" for n in range(8))


def test_writers_of_one_name_with_two_models_cannot_mix(db_path, test_plugin):
    db = vibes.Database(db_path)
    first = db.collection("c", model="hash")
    second = vibes.Database(db_path).collection("c", model="resizable-test")
    first.embed("a", "alpha")
    with pytest.raises(vibes.ModelMismatchError):
        second.embed("b", "beta")
    assert ids(db_path) == ["a"]


# -- --files patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, message", [("", "needs a glob pattern"), ("/etc/*.conf", "must be relative")]
)
def test_bad_files_patterns_are_one_line_errors(invoke, docs, db_path, pattern, message):
    result = invoke(["embed-multi", "c", "--files", docs, pattern, "-d", db_path])
    one_line_error(result, message)
    assert not os.path.exists(db_path)


# -- a full disk ------------------------------------------------------------------------------


def _file_size_limit(limit):
    def apply():
        # Writes past the limit fail with EFBIG instead of killing the process: the way a
        # full disk looks to SQLite, without needing one.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux file size limits")
def test_a_full_disk_keeps_committed_batches_and_says_so(tmp_path, db_path, test_plugin):
    data = tmp_path / "items.jsonl"
    write_jsonl(data, [{"id": f"i{n:04d}", "text": "word " * 300 + str(n)} for n in range(400)])
    command = [sys.executable, "-m", "vibes", "embed-multi", "c", data, "-m", "hash", "--store"]
    result = subprocess.run(
        [*map(str, command), "--batch-size", "20", "-d", db_path],
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(700_000),
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "disk" in result.stderr and "no transaction is active" not in result.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    kept = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    conn.close()
    assert kept % 20 == 0 and f"{kept} items before it were saved" in result.stderr
    # With space again, the same command resumes.
    rerun = subprocess.run(
        [*map(str, command), "--batch-size", "20", "-d", db_path], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(ids(db_path)) == 400


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux file size limits")
def test_an_export_that_hits_a_full_disk_leaves_the_old_file(tmp_path, db_path, test_plugin):
    db = vibes.Database(db_path)
    db.collection("c", model="hash").embed_multi(
        [(f"i{n}", "word " * 200 + str(n)) for n in range(300)], store=True
    )
    out = tmp_path / "backup.jsonl"
    out.write_text("the previous backup\n")
    command = [sys.executable, "-m", "vibes", "collections", "export", "c", "-o", out]
    result = subprocess.run(
        [*map(str, command), "-d", db_path],
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(100_000),
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Cannot write") and "Traceback" not in result.stderr
    assert out.read_text() == "the previous backup\n"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

"""Hard to break: kill -9 at random points of embed-multi, and many processes on one file.

Every trial runs real processes (`python -m vibes`, or tests/reliability_worker.py, which
runs the same command and can SIGKILL itself from inside SQLite). The random points come
from a seeded RNG, so a failing trial can be run again alone:

    VIBES_RELIABILITY_TRIALS=200 pytest tests/test_reliability.py   # more trials
    VIBES_RELIABILITY_SEED=7 ...                                    # other kill points
    VIBES_RELIABILITY_ROUNDS=10 ...                                 # more concurrent rounds
    VIBES_RELIABILITY_REPORT=/tmp/r.jsonl ...                       # one line per trial

After each kill: the file passes PRAGMA integrity_check; the rows present are whole
batches, exactly the first items of the input, each vector the model's for its content;
a re-run completes the job, embedding only what was missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "reliability_worker.py"
TRIALS = int(os.environ.get("VIBES_RELIABILITY_TRIALS", "20"))
SEED = int(os.environ.get("VIBES_RELIABILITY_SEED", "20240609"))
ROUNDS = int(os.environ.get("VIBES_RELIABILITY_ROUNDS", "1"))
KINDS = ("rows", "rows-chunk", "files", "files-chunk")
COLLECTION = "docs"


# -- jobs: an input, and what a complete run must store ---------------------------------------


@dataclass
class Job:
    kind: str
    args: list[str]  # embed-multi arguments, without -d
    batch: int
    #: (id, text the model embeds), in the order the items are written.
    units: list[tuple[str, str]]
    #: chunked jobs: (document id, its chunk ids), in input order.
    documents: list[tuple[str, list[str]]] = field(default_factory=list)


def _words(rng: random.Random, tag: str, count: int) -> list[str]:
    return [f"{tag}w{n}x{rng.randrange(10**6)}" for n in range(count)]


def make_job(kind: str, directory: Path, rng: random.Random, batch: int) -> Job:
    chunked = kind.endswith("-chunk")
    if kind.startswith("rows"):
        count = 50 if chunked else 150
        numbers = list(range(count))
        rng.shuffle(numbers)  # ids not in sorted order: "the first rows" means input order
        texts = []
        for position, number in enumerate(numbers):
            words = _words(rng, f"r{position}", 7 if chunked else 4)
            texts.append((f"item-{number:04d}", " ".join(words)))
        if rng.random() < 0.5:
            data = directory / "items.jsonl"
            data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts))
        else:
            data = directory / "items.csv"
            data.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in texts))
        args = ["embed-multi", COLLECTION, str(data)]
        if chunked:
            args += ["--chunk", "words"]  # the test plugin's chunker: 3 words a chunk
    else:
        files = directory / "files"
        files.mkdir()
        count = 30 if chunked else 80
        texts = []
        for number in range(count):
            lines = [" ".join(_words(rng, f"f{number}l{n}", 3)) for n in range(4 if chunked else 1)]
            name = f"f{number:03d}.txt"
            (files / name).write_text("\n".join(lines) + "\n")
            texts.append((name, "\n".join(lines) + "\n"))
        (files / "skip.md").write_text("not matched by the glob")
        args = ["embed-multi", COLLECTION, "--files", str(files), "*.txt"]
        if chunked:
            args += ["--chunk", "lines"]  # a built-in chunker
    args += ["-m", "hash", "--batch-size", str(batch)]
    if not chunked:
        return Job(kind, args, batch, texts)
    units, documents = [], []
    for document, text in texts:
        if kind == "rows-chunk":
            words = text.split()
            pieces = [" ".join(words[n : n + 3]) for n in range(0, len(words), 3)]
        else:
            pieces = [line for line in text.split("\n") if line.strip()]
        ids = [f"{document}#{n + 1}" for n in range(len(pieces))]
        units += list(zip(ids, pieces))
        documents.append((document, ids))
    return Job(kind, args, batch, units, documents)


# -- what the database holds -------------------------------------------------------------------


def model_calls(log: Path) -> list[int]:
    """Sizes of the model's calls, as the test model logged them."""
    return [int(n) for n in log.read_text().split()] if log.exists() else []


def decode(blob: bytes) -> tuple[float, ...]:
    return struct.unpack("<" + "f" * (len(blob) // 4), blob)


def expected_vector(text: str) -> tuple[float, ...]:
    from vibes_test_plugin import hash_vector

    return decode(struct.pack("<" + "f" * 16, *hash_vector(text)))


_SCHEMA: dict[str, set] = {}


def full_schema(directory: Path) -> dict[str, set]:
    """The tables and recorded migrations of a new database, as this vibes makes it."""
    if not _SCHEMA:
        import vibes

        path = directory / "reference.db"
        vibes.Database(path).close()
        conn = sqlite3.connect(path)
        _SCHEMA["tables"] = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        _SCHEMA["migrations"] = set(
            conn.execute("SELECT migration_set, name FROM _sqlite_migrations")
        )
        conn.close()
    return _SCHEMA


def allowed_counts(before: int, calls: list[int]) -> set[int]:
    """Rows a run may leave: those before it plus every model call it made, all of them
    committed or all but the last (killed between the model and the commit)."""
    done = [before + sum(calls[:n]) for n in range(len(calls) + 1)]
    return set(done[-2:])


def check_database(db: Path, job: Job, allowed: set[int], whole_batches: bool = True) -> dict:
    """Check a database a kill left behind; return what it holds (ids, partial documents)."""
    if not db.exists():
        assert allowed == {0}, "the model ran but no database file exists"
        return {"ids": [], "partial": 0}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # A collection's full-text index (FTS5's tables) comes with the collection.
        tables = {name for name in tables if not name.startswith("vibes_fts_")}
        # The schema is created in one transaction: all of it, or none of it.
        schema = full_schema(db.parent)
        assert tables in (set(), schema["tables"]), tables
        row = None
        if tables:
            migrations = conn.execute("SELECT migration_set, name FROM _sqlite_migrations")
            assert set(migrations) == schema["migrations"]
            row = conn.execute("SELECT id FROM collections WHERE name = ?", (COLLECTION,))
            row = row.fetchone()
        if row is None:
            assert 0 in allowed, "the model ran but the collection was never created"
            return {"ids": [], "partial": 0}
        (collection_id,) = row
        stored = conn.execute(
            "SELECT id, embedding, content_hash FROM embeddings WHERE collection_id = ?",
            (collection_id,),
        ).fetchall()
        ids = [r[0] for r in stored]
        count = len(ids)
        # Exactly the first items of the input, in whole batches.
        assert set(ids) == {unit_id for unit_id, _ in job.units[:count]}, (count, job.kind)
        if whole_batches:
            assert count % job.batch == 0 or count == len(job.units), (count, job.batch)
        # As many as the model calls that were committed: all of them, or all but the last.
        assert count in allowed, (count, allowed)
        texts = dict(job.units)
        for item_id, blob, content_hash in stored:
            assert decode(blob) == expected_vector(texts[item_id]), item_id
            assert content_hash == hashlib.md5(texts[item_id].encode()).digest(), item_id
        keyed = conn.execute(
            "SELECT count(*) FROM vibes_keys k JOIN embeddings e "
            "ON e.collection_id = k.collection_id AND e.id = k.item_id WHERE k.collection_id = ?",
            (collection_id,),
        ).fetchone()[0]
        assert keyed == count, "an item without its vibes_keys row"
        partial = 0
        if job.documents:
            chunks = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT id, document_id FROM vibes_chunks WHERE collection_id = ?",
                    (collection_id,),
                )
            }
            assert set(chunks) == set(ids), "chunk rows and their chunk records differ"
            recorded = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT document_id, chunk_count FROM vibes_documents WHERE collection_id = ?",
                    (collection_id,),
                )
            }
            present = set(ids)
            for document, chunk_ids in job.documents:
                assert all(chunks[c] == document for c in chunk_ids if c in present)
                whole = all(c in present for c in chunk_ids)
                if whole:
                    assert recorded.get(document) == len(chunk_ids), document
                else:
                    assert document not in recorded, document
                    partial += any(c in present for c in chunk_ids)
            assert partial <= 1, "more than one document half-written"
        return {"ids": ids, "partial": partial}
    finally:
        conn.close()


def check_complete(db: Path, job: Job) -> None:
    info = check_database(db, job, {len(job.units)})
    assert len(info["ids"]) == len(job.units)
    assert info["partial"] == 0


# -- running and killing ------------------------------------------------------------------------


def worker_command(args: list[str], *options: str) -> list[str]:
    return [sys.executable, str(WORKER), *options, "--", *args]


def vibes_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "vibes", *args]


_STEPS: dict[tuple[str, int], int] = {}


def full_run_steps(job: Job, directory: Path) -> int:
    """SQLite steps of one whole run of a job of this kind (measured once, on a copy)."""
    key = (job.kind, job.batch)
    if key not in _STEPS:
        scratch = directory / "calibration.db"
        steps = directory / "steps.txt"
        command = worker_command(job.args + ["-d", str(scratch)], "--steps-file", str(steps))
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        _STEPS[key] = int(steps.read_text())
    return _STEPS[key]


def kill_by_signal(
    command: list[str], log: Path, rng: random.Random, batches: int, env
) -> tuple[int, str]:
    """Start `command`, wait for a random batch and a random part of it, then kill -9.
    Returns the exit status (-9 when the kill landed) and what the process wrote on stderr."""
    errors = log.with_suffix(".stderr")
    with open(errors, "w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            target = rng.randint(0, batches)
            extra = rng.uniform(0, 0.5) if target == 0 else rng.uniform(0, 0.03)
            deadline = time.monotonic() + 60
            while len(model_calls(log)) < target and process.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.001)
            time.sleep(extra)
        finally:
            process.kill()
            process.wait(timeout=60)
    return process.returncode, errors.read_text()


def kill_in_sqlite(job: Job, db: Path, rng: random.Random, directory: Path, env) -> tuple[int, str]:
    """Run the job in the worker, which SIGKILLs itself at a random SQLite step."""
    step = rng.randint(1, full_run_steps(job, directory))
    command = worker_command(job.args + ["-d", str(db)], "--kill-at-step", str(step))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


_REPORT: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def report_trials():
    yield
    path = os.environ.get("VIBES_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as file:
            for line in _REPORT:
                file.write(json.dumps(line) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS), ids=lambda n: f"trial{n:03d}")
def test_kill_9_during_embed_multi_loses_nothing_and_a_rerun_completes(
    trial, tmp_path, test_plugin
):
    rng = random.Random(SEED * 1000 + trial)
    kind = KINDS[trial % len(KINDS)]
    mechanism = "sqlite-step" if trial % 3 == 2 else "signal"
    batch = rng.choice([10, 10, 7])
    job = make_job(kind, tmp_path, rng, batch)
    db = tmp_path / "kill.db"
    batches = -(-len(job.units) // batch)
    delay = "0" if mechanism == "sqlite-step" else rng.choice(["0", "0.003", "0.01"])
    kills = 2 if rng.random() < 0.25 else 1  # sometimes kill the resuming run too
    record = {"trial": trial, "seed": SEED, "kind": kind, "mechanism": mechanism}
    record.update({"batch": batch, "delay": delay, "faults": 0, "partial": 0})

    kept = 0
    for attempt in range(kills):
        log = tmp_path / f"calls-{attempt}.log"
        env = {**os.environ, "VIBES_TEST_DELAY": delay, "VIBES_TEST_LOG": str(log)}
        if mechanism == "signal":
            command = vibes_command(job.args + ["-d", str(db)])
            code, stderr = kill_by_signal(command, log, rng, batches, env)
        else:
            code, stderr = kill_in_sqlite(job, db, rng, tmp_path, env)
        assert code in (0, -9), f"trial {trial}: exit {code}: {stderr}"
        record["faults"] += code == -9
        # A resumed run skips what is stored: its batches of chunks need not line up.
        whole = attempt == 0 or not job.documents
        info = check_database(db, job, allowed_counts(kept, model_calls(log)), whole)
        kept = len(info["ids"])
        record["partial"] = max(record["partial"], info["partial"])
        record.setdefault("kept", []).append(kept)

    log = tmp_path / "rerun.log"
    rerun = subprocess.run(
        vibes_command(job.args + ["-d", str(db)]),
        env={**os.environ, "VIBES_TEST_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    missing = len(job.units) - kept
    assert sum(model_calls(log)) == missing, (kept, rerun.stderr)
    assert rerun.stderr.startswith(f"Embedded {missing},"), rerun.stderr
    if not job.documents:
        assert f"skipped {kept} unchanged" in rerun.stderr, rerun.stderr
    check_complete(db, job)
    _REPORT.append(record)


# -- many processes on one file ----------------------------------------------------------------

WRITERS = 6
ITEMS_PER_WRITER = 30
READERS = 3


def writer_items(writer: int) -> list[tuple[str, str]]:
    return [
        (f"w{writer}-{n:02d}", f"writer {writer} item {n} text") for n in range(ITEMS_PER_WRITER)
    ]


def reader_commands(layout: str, db: Path) -> list[list[str]]:
    target = "shared" if layout != "own-collections" else "c0"
    return [
        ["similar", target, "-c", "writer item text", "-n", "5", "-d", str(db)],
        ["collections", "--nl", "-d", str(db)],
        ["similar", target, "w0-00", "-n", "3", "-d", str(db)],
        ["collections", "--table", "-d", str(db)],
    ]


def reader_failure(command: list[str], code: int, stdout: str, stderr: str) -> str | None:
    """Why a reader's outcome is wrong, or None. A collection or item that no writer has
    committed yet is a fair answer; anything else that is not exit 0 is an error."""
    if code == 0:
        if "--table" not in command:
            for line in stdout.splitlines():
                try:
                    json.loads(line)
                except ValueError:
                    return f"{command[0]} printed a line that is not JSON: {line[:200]!r}"
        return None
    lines = stderr.strip().splitlines()
    not_yet = ("No database at", "does not exist", "No item 'w0-00'")
    if code == 1 and len(lines) == 1 and any(reason in lines[0] for reason in not_yet):
        return None
    return f"{command[0]} exited {code}: {stderr.strip()[-500:]}"


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS), ids=lambda n: f"round{n}")
@pytest.mark.parametrize("layout", ["same-collection", "own-collections", "chunked"])
def test_writers_and_readers_together_on_a_new_database(layout, round_, tmp_path, test_plugin):
    from vibes_test_plugin import hash_vector

    db = tmp_path / "new.db"  # does not exist yet: every process races to create it
    go = tmp_path / "go"
    env = {**os.environ, "VIBES_TEST_DELAY": "0.002"}
    processes = []
    for writer in range(WRITERS):
        data = tmp_path / f"w{writer}.jsonl"
        items = writer_items(writer)
        if layout == "chunked":  # each item a document of two chunks of 3 words
            items = [(i, f"{t} {i}") for i, t in items]
        data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items))
        collection = f"c{writer}" if layout == "own-collections" else "shared"
        args = ["embed-multi", collection, str(data), "-m", "hash", "--batch-size", "5"]
        args += ["-d", str(db)] + (["--chunk", "words"] if layout == "chunked" else [])
        ready = tmp_path / f"ready-w{writer}"
        command = worker_command(args, "--ready", str(ready), "--go", str(go))
        processes.append(
            (
                ready,
                subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                ),
            )
        )

    failures: list[str] = []
    runs = [0] * READERS
    writers_done = threading.Event()

    def read(number: int) -> None:
        commands = reader_commands(layout, db)
        ready = tmp_path / f"ready-r{number}"
        first = commands[number % len(commands)]
        process = subprocess.Popen(
            worker_command(first, "--ready", str(ready), "--go", str(go)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = process.communicate(timeout=120)
        runs[number] += 1
        if (why := reader_failure(first, process.returncode, out, err)) is not None:
            failures.append(why)
        turn = number
        while not writers_done.is_set():
            turn += 1
            command = commands[turn % len(commands)]
            done = subprocess.run(
                vibes_command(command), env=env, capture_output=True, text=True, timeout=120
            )
            runs[number] += 1
            if why := reader_failure(command, done.returncode, done.stdout, done.stderr):
                failures.append(why)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 120
        readies = [ready for ready, _ in processes]
        readies += [tmp_path / f"ready-r{n}" for n in range(READERS)]
        while not all(path.exists() for path in readies):
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.005)
        assert not db.exists()
        go.touch()  # all at once
        results = [p.communicate(timeout=120) + (p.returncode,) for _, p in processes]
    finally:
        go.touch()  # the readers' first commands wait for it
        writers_done.set()
        for _, process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        for thread in threads:
            thread.join(timeout=120)

    errors = [
        f"writer {n}: exit {code}: {err.strip()}"
        for n, (_, err, code) in enumerate(results)
        if code != 0
    ]
    assert errors == [], errors
    assert failures == [], failures
    assert all(runs), runs

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    names = [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY name")]
    expected_names = (
        [f"c{n}" for n in range(WRITERS)] if layout == "own-collections" else ["shared"]
    )
    assert names == expected_names
    rows = conn.execute(
        "SELECT c.name, e.id, e.embedding FROM embeddings e JOIN collections c "
        "ON c.id = e.collection_id"
    ).fetchall()
    expected = {}
    for writer in range(WRITERS):
        collection = f"c{writer}" if layout == "own-collections" else "shared"
        for item_id, text in writer_items(writer):
            if layout == "chunked":
                words = f"{text} {item_id}".split()
                for n in range(0, len(words), 3):
                    expected[(collection, f"{item_id}#{n // 3 + 1}")] = " ".join(words[n : n + 3])
            else:
                expected[(collection, item_id)] = text
    found = [(name, item_id) for name, item_id, _ in rows]
    assert len(found) == len(set(found))  # each exactly once
    assert set(found) == set(expected)
    for name, item_id, blob in rows:
        vector = decode(struct.pack("<" + "f" * 16, *hash_vector(expected[(name, item_id)])))
        assert decode(blob) == vector, item_id
    dimensions = conn.execute("SELECT DISTINCT dimensions FROM vibes_collections").fetchall()
    assert dimensions == [(16,)]
    if layout == "chunked":
        (documents,) = conn.execute("SELECT count(*) FROM vibes_documents").fetchone()
        assert documents == WRITERS * ITEMS_PER_WRITER
    conn.close()


# -- regressions, one by one ----------------------------------------------------------------------


@pytest.fixture
def half_written_document(tmp_path, db_path, run, test_plugin):
    """A document whose first batch of chunks was committed before the model failed on the
    second (a kill -9 between two batches leaves the same state)."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("one\ntwo\nthree\nfour\nFAIL five\nsix\nseven\n")
    (files / "b.txt").write_text("bee\n")
    args = ["embed-multi", "docs", "--files", files, "*.txt", "--chunk", "lines", "-d", db_path]
    failed = run([*args, "--batch-size", "3", "-m", "hash"])
    assert failed.returncode == 1 and "3 items before it were saved" in failed.stderr
    assert chunk_rows(db_path, "a.txt") == ["a.txt#1", "a.txt#2", "a.txt#3"]
    return files, args


def chunk_rows(db_path, document: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT id FROM embeddings WHERE id LIKE ? ORDER BY id", (document + "#%",))
    ids = [row[0] for row in rows]
    conn.close()
    return ids


def test_a_half_written_document_can_be_deleted(half_written_document, db_path, run):
    # vibes delete docs a.txt -> "Error: Not in collection 'docs': 'a.txt'", chunks stay.
    result = run(["delete", "docs", "a.txt", "-d", db_path])
    assert result.returncode == 0, result.stderr
    assert chunk_rows(db_path, "a.txt") == []


def test_prune_removes_the_chunks_of_a_half_written_document(half_written_document, db_path, run):
    # The file is gone; --prune deletes only documents recorded in vibes_documents.
    files, args = half_written_document
    (files / "a.txt").unlink()
    result = run([*args, "--prune"])
    assert result.returncode == 0, result.stderr
    assert chunk_rows(db_path, "b.txt") == ["b.txt#1"]
    assert chunk_rows(db_path, "a.txt") == []

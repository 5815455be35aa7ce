"""``vibes serve`` under load: concurrent clients of the JSON search API against the same
searches run in-process.

A collection of the first ``--size`` Debian package descriptions (``debian.py``: real
text, MiniLM vectors, text stored) is written once with ``embed_multi``, which is what
``vibes embed-multi`` leaves a user with (above 20,000 items: an HNSW index built
automatically; the output says which). ``vibes serve DB --port 0`` runs as a subprocess;
once one real search has answered 200, ``--clients`` threads, each with one keep-alive
``http.client`` connection, loop over ``--queries`` short texts (the first 3-6 words of
sampled descriptions, a few needing URL quoting) for ``--seconds``, each request
``GET /-/vibes/debian/search.json?q=TEXT&n=10``. An error is any status but 200, any
exception, or a body that is not a JSON list of 10 hits; there must be none.

Before the load, the API's answers to ``--check`` queries are compared with
``collection.similar(q, 10)`` computed here on the same file (ids and scores equal,
exactly). The load runs twice: ``vibes serve`` as it starts by default, then with
``--batch`` (concurrent searches answered together).
The baseline is those same queries through ``collection.similar(q, 10)`` in this
process, on one ``vibes.Database`` opened read-only as the server opens it: one thread,
then ``--clients`` threads sharing it, each for ``--seconds``. Clients, server and
baseline all share this machine's CPUs (printed), so the server's figures include the
clients' own cost.

    python bench/bench_serve.py [--clients 8] [--seconds 30] [--size 60000] [--queries 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from debian import CACHE, database, descriptions, vectors  # noqa: E402

import vibes  # noqa: E402

COLLECTION = "debian"
N = 10
#: How long the server may take to print its address, then to answer a first search.
START_TIMEOUT = 60.0
READY_TIMEOUT = 300.0
#: Queries whose characters need quoting in a URL (added to the sampled ones).
AWKWARD = [
    "C++ & C# compilers",
    "100% free/libre tools?",
    "café résumé naïve",
    "a+b=c #hash tags",
    'search "quoted" text; semicolons',
    "日本語 input method",
]
SERVING = re.compile(r" at (https?://[^\s/]+)(/\S*)? \(Ctrl-C to stop\)")


@dataclass
class Run:
    """What one load (server or in-process) measured: each request's latency, errors."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``th percentile of the successful requests' latency, in ms."""
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def queries_from(pairs: list[tuple[str, str]], count: int) -> list[str]:
    """``count`` short search texts: the first 3-6 words of sampled descriptions (fixed
    seed), the awkward ones first."""
    rng = random.Random(0)
    texts = list(AWKWARD[:count])
    for _, description in rng.sample(pairs, len(pairs)):
        if len(texts) >= count:
            break
        words = description.split()[: rng.randint(3, 6)]
        text = " ".join(words).strip(" ,.;:-")
        if len(text) >= 3 and text not in texts:
            texts.append(text)
    return texts


def built_database(size: int) -> Path:
    """The database of the first ``size`` descriptions, built once under bench/.cache."""
    pairs = descriptions()[:size]
    directory = CACHE / f"serve-{len(pairs)}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "debian.db"
    if path.exists():
        with vibes.Database(path, readonly=True) as db:
            complete = db.collection(COLLECTION, create=False).count() == len(pairs)
        if not complete:  # an earlier build was interrupted
            path.unlink()
    if not path.exists():
        print(f"(building a database of {len(pairs):,} descriptions once in {directory})")
        start = time.perf_counter()
        database(directory, pairs, name=COLLECTION, matrix=vectors(descriptions())[: len(pairs)])
        print(f"(built in {time.perf_counter() - start:.1f} s)")
    return path


def search_path(text: str) -> str:
    query = urllib.parse.urlencode({"q": text, "n": N})
    return f"/-/vibes/{urllib.parse.quote(COLLECTION, safe='')}/search.json?{query}"


class Server:
    """``vibes serve PATH --port 0`` as a subprocess, its stderr collected by a thread."""

    def __init__(self, path: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vibes", "serve", str(path), "--port", "0", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.new_lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.started = time.perf_counter()
        self.host, self.port = self._address()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self.new_lines.put(line)
        self.new_lines.put(None)

    def _address(self) -> tuple[str, int]:
        deadline = time.monotonic() + START_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.new_lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise SystemExit(f"vibes serve exited before listening:\n{self.stderr()}")
            if found := SERVING.search(line):
                parsed = urllib.parse.urlsplit(found.group(1))
                assert parsed.hostname and parsed.port
                return parsed.hostname, parsed.port
        raise SystemExit(
            f"vibes serve printed no 'Serving ... at URL' line in {START_TIMEOUT:.0f} s:\n"
            f"{self.stderr()}"
        )

    def stderr(self) -> str:
        return "\n".join(self.lines[-30:]) or "(nothing on stderr)"

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_ready(self, text: str) -> float:
        """Seconds from start until the list answers and a real search answers 200."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        for path in ("/-/vibes.json", search_path(text)):
            while True:
                if self.process.poll() is not None:
                    raise SystemExit(f"vibes serve exited while warming up:\n{self.stderr()}")
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"vibes serve did not answer {path} with 200 in {READY_TIMEOUT:.0f} s "
                        f"(last: {last}):\n{self.stderr()}"
                    )
                try:
                    status, body = self.get(path, timeout=READY_TIMEOUT)
                    if status == 200:
                        break
                    last = f"{status} {body[:200]!r}"
                except OSError as error:
                    last = repr(error)
                time.sleep(0.2)
        return time.perf_counter() - self.started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def check(server: Server, collection: Any, queries: list[str]) -> list[tuple[str, str]]:
    """Where the API's answer differs from ``collection.similar`` here: (query, what)."""
    problems: list[tuple[str, str]] = []
    for text in queries:
        expected = [m.to_dict() for m in collection.similar(text, N)]
        status, body = server.get(search_path(text), timeout=60)
        if status != 200:
            problems.append((text, f"status {status}: {body[:200]!r}"))
            continue
        got = json.loads(body)
        if [h["id"] for h in got] != [e["id"] for e in expected]:
            problems.append(
                (text, f"ids {[h['id'] for h in got]} != {[e['id'] for e in expected]}")
            )
            continue
        for hit, want in zip(got, expected):
            if hit["score"] != want["score"]:  # exactly: the same float
                problems.append((text, f"{hit['id']} score {hit['score']} != {want['score']}"))
            rest = {k: v for k, v in hit.items() if k != "score"}
            if rest != {k: v for k, v in want.items() if k != "score"}:
                problems.append((text, f"{hit['id']}: {rest} != {want}"))
    return problems


def load(threads: int, seconds: float, request: Callable[[int, int], str | None]) -> Run:
    """``threads`` threads, each calling ``request(thread, i)`` for i = 0, 1, ... until
    ``seconds`` pass: None for a success, else the error's description."""
    run = Run()
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(thread: int) -> None:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        barrier.wait()
        i = 0
        while (start := time.perf_counter()) < deadline:
            error = request(thread, i)
            if error is None:
                latencies.append(time.perf_counter() - start)
            else:
                errors[error] += 1
            i += 1
        with lock:
            run.latencies += latencies
            run.errors += errors

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    start = time.perf_counter()
    deadline = start + seconds
    barrier.wait()
    for w in workers:
        w.join()
    run.elapsed = time.perf_counter() - start
    return run


def server_load(server: Server, queries: list[str], clients: int, seconds: float) -> Run:
    paths = [search_path(q) for q in queries]
    connections: list[http.client.HTTPConnection | None] = [None] * clients
    stride = len(paths) // clients or 1

    def request(thread: int, i: int) -> str | None:
        conn = connections[thread]
        if conn is None:
            conn = connections[thread] = http.client.HTTPConnection(
                server.host, server.port, timeout=60
            )
        try:
            conn.request("GET", paths[(thread * stride + i) % len(paths)])
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            connections[thread] = None
            return f"{type(error).__name__}: {error}"
        if response.status != 200:
            return f"status {response.status}: {body[:200]!r}"
        try:
            hits = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        if not isinstance(hits, list) or len(hits) != N:
            return f"not a list of {N}: {body[:200]!r}"
        return None

    try:
        return load(clients, seconds, request)
    finally:
        for conn in connections:
            if conn is not None:
                conn.close()


def in_process_load(collection: Any, queries: list[str], threads: int, seconds: float) -> Run:
    stride = len(queries) // threads or 1

    def request(thread: int, i: int) -> str | None:
        try:
            hits = collection.similar(queries[(thread * stride + i) % len(queries)], N)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        return None if len(hits) == N else f"{len(hits)} hits"

    return load(threads, seconds, request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--check", type=int, default=20, help="queries checked against in-process")
    args = parser.parse_args()

    path = built_database(args.size)
    pairs = descriptions()[: args.size]
    queries = queries_from(pairs, args.queries)
    db = vibes.Database(path, readonly=True)
    collection = db.collection(COLLECTION, create=False)
    collection.similar(queries[0], N)  # the model and the index loaded before any timing
    status = collection.index_status()
    index = (
        f"HNSW index (built automatically at >= {status['auto_index_from']:,} items)"
        if status["kind"] == "hnsw"
        else f"index: {status['kind']} (exact search)"
    )
    print(
        f"{collection.count():,} Debian descriptions, {index}; {len(queries)} queries, "
        f"top {N}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start"
    )

    served: dict[str, Run] = {}
    problems: list[tuple[str, str]] = []
    stderr_lines: list[str] = []
    for options in ((), ("--batch",)):
        server = Server(path, *options)
        label = " ".join(("vibes serve", *options))
        try:
            ready = server.wait_ready(queries[-1])
            print(f"{label} at http://{server.host}:{server.port}: a first search answered "
                  f"{ready:.1f} s after start")  # fmt: skip
            if not options:  # exactly what collection.similar gives, unbatched
                checked = queries[: args.check]
                problems = check(server, collection, checked)
                print(
                    f"correctness: {len(checked) - len({text for text, _ in problems})} of "
                    f"{len(checked)} queries give the same hits and scores as "
                    "collection.similar"
                )
                for text, problem in problems[:10]:
                    print(f"  MISMATCH {text!r}: {problem}")
            served[label] = server_load(server, queries, args.clients, args.seconds)
        finally:
            server.stop()
        stderr_lines += [line for line in server.lines if not SERVING.search(line)]
    single = in_process_load(collection, queries, 1, args.seconds)
    shared = in_process_load(collection, queries, args.clients, args.seconds)
    db.close()

    rows = [(f"{label}, {args.clients} HTTP clients", run) for label, run in served.items()]
    rows += [
        ("in-process similar, 1 thread", single),
        (f"in-process similar, {args.clients} threads", shared),
    ]
    print(f"\n{args.seconds:g} s each{'':34} req/s   p50 ms   p95 ms   p99 ms   max ms   errors")
    for name, run in rows:
        print(
            f"  {name:<46} {run.rate:7.1f} {run.percentile(50):8.1f} {run.percentile(95):8.1f} "
            f"{run.percentile(99):8.1f} {run.percentile(100):8.1f} {sum(run.errors.values()):8d}"
        )
    for label, run in served.items():
        for name, base in rows[len(served) :]:
            print(
                f"  {label} / {name}: {run.rate / base.rate:.2f}x req/s, "
                f"{run.percentile(50) / base.percentile(50):.2f}x p50, "
                f"{run.percentile(95) / base.percentile(95):.2f}x p95"
            )
    for name, run in rows:
        for error, count in run.errors.most_common(5):
            print(f"  ERROR ({name}) x{count}: {error}")
    if stderr_lines:
        print("servers' stderr:\n  " + "\n  ".join(stderr_lines[-20:]))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if any(run.errors for run in served.values()) or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""`similar` over 100,000 stored 384-dimension vectors: vibes against llm 0.36.

Both read the same SQLite file. llm's ``Collection.similar_by_vector`` decodes and scores
every row in Python; vibes scores one float32 matrix with BLAS. vibes is measured three
ways: warm (the matrix kept in the process, as in a server or notebook), cold (a new
``Database`` whose first query reads every vector), and the ``vibes similar`` command
(a whole new process, model-free query by ID); each exactly and through the index.

    python bench/bench_similar.py [--size N] [--llm-queries Q]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# These benchmarks measure a database whose index is ready when its write returns: the
# write builds it, rather than a background process (vibes.index.background).
os.environ.setdefault("VIBES_INDEX_BUILD", "inline")


def clustered_vectors(count: int, dimensions: int, seed: int = 0) -> np.ndarray:
    """Vectors around 100 random centres: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, dimensions))
    vectors = centres[rng.integers(0, 100, count)] + 0.35 * rng.normal(size=(count, dimensions))
    return vectors.astype(np.float32)


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--llm-queries", type=int, default=3)
    args = parser.parse_args()

    import llm
    import sqlite_utils

    import vibes

    vectors = clustered_vectors(args.size, 384)
    queries = clustered_vectors(200, 384, seed=1)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        db = vibes.Database(path)
        collection = db.collection("bench", model="minilm")
        start = time.perf_counter()
        collection.embed_multi(
            ({"id": f"item-{i}", "vector": v} for i, v in enumerate(vectors)), batch_size=5000
        )
        print(
            f"stored {args.size} x 384 vectors in {time.perf_counter() - start:.1f} s "
            "(with the index built automatically above 20,000 items)"
        )

        llm_collection = llm.Collection("bench", sqlite_utils.Database(path))
        llm_times = timed(
            lambda: llm_collection.similar_by_vector(queries[0].tolist(), 10), args.llm_queries
        )
        # Same answer from both, before any speed is compared.
        expected = [e.id for e in llm_collection.similar_by_vector(queries[0].tolist(), 10)]
        exact = [m.id for m in collection.similar_by_vector(queries[0], 10, exact=True)]
        assert exact == expected

        def cold(exact: bool) -> None:
            fresh = vibes.Database(path)
            fresh.collection("bench").similar_by_vector(queries[0], 10, exact=exact)
            fresh.close()

        position = iter(range(10**9))

        def warm(exact: bool) -> None:
            query = queries[next(position) % len(queries)]
            collection.similar_by_vector(query, 10, exact=exact)

        rows = []
        for exact in (True, False):
            label = "exact" if exact else "index"
            collection.similar_by_vector(queries[0], 10, exact=exact)  # load once
            rows.append((f"vibes {label}, warm (kept in process)", warm, exact, 200))
            rows.append((f"vibes {label}, cold (new Database)", cold, exact, 5))
        measured = [
            (name, statistics.median(timed(lambda f=f, e=e: f(e), runs)))
            for name, f, e, runs in rows
        ]
        command = [sys.executable, "-m", "vibes", "similar", "bench", "item-0", "-d", str(path)]
        env = {**os.environ, "VIBES_DISABLE_PLUGINS": "1"}
        for name, extra in (("exact", ["--exact"]), ("index", [])):
            cli = timed(
                lambda extra=extra: subprocess.run(
                    command + extra, check=True, capture_output=True, env=env
                ),
                5,
            )
            measured.append((f"vibes similar ID {name} (new process)", statistics.median(cli)))

    llm_median = statistics.median(llm_times)
    rows = [("llm 0.36 Collection.similar_by_vector", llm_median), *measured]
    print(f"{args.size} vectors x 384 dimensions, top 10, median of runs")
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1000:10.2f} ms   {llm_median / seconds:8.1f}x llm")


if __name__ == "__main__":
    main()

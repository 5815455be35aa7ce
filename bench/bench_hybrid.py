"""Hybrid search through vibes' own API: quality, latency, and the cost of keeping the
full-text index in step.

1. Quality: the labelled sets of ``retrieval_sets.py`` (the machine's man pages, Python's
   docstrings; queries are their authors' one-line summaries, or those turned into
   questions) stored in a vibes collection with all-MiniLM-L6-v2 vectors and their text,
   then searched with ``Collection.search_many(..., mode=vector|text|hybrid)``. Prints
   nDCG@10, recall@10 and recall@100 of each mode, and hybrid's gain over the better
   single leg.
2. Latency: the median time of a vector search and of a hybrid search at 5,000 and
   100,000 documents (real text; vectors from a cheap hash model, so that the model's
   time does not hide the difference), and the difference.
3. Ingest: ``vibes embed-multi`` of 5,000 Debian package descriptions with the real
   model, with the full-text index and with ``--no-fts``, alternated, same run.

    python bench/bench_hybrid.py [--queries 800] [--sizes 5000,100000] [--skip quality,...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import debian  # noqa: E402
import retrieval_sets as rs  # noqa: E402

import vibes  # noqa: E402
from vibes.models.base import EmbeddingModel  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
MODES = ("vector", "text", "hybrid")


def cached_vectors(name: str, texts: Sequence[str]) -> np.ndarray:
    """MiniLM document vectors, computed once and kept in bench/.cache (shared with
    hybrid_study.py, which embeds the same documents)."""
    import hybrid_study

    return hybrid_study._cached_vectors(
        f"{name}-docs", texts, lambda batch: vibes.get_model("minilm").embed_batch(batch)
    )


def quality(directory: Path, n_queries: int) -> None:
    print("== quality: nDCG@10, recall@10, recall@100 (mean over queries)")
    variants: list[tuple[str, dict]] = [
        ("vector", {"mode": "vector"}),
        ("text", {"mode": "text"}),
        ("hybrid (default)", {"mode": "hybrid"}),
        ("hybrid weighted 0.5", {"mode": "hybrid", "weight": 0.5}),
        ("hybrid depth 50", {"mode": "hybrid", "depth": 50}),
        ("hybrid rrf k=60", {"mode": "hybrid", "fusion": "rrf", "weight": 0.5}),
    ]
    for name, build, questions in [
        ("man", rs.man_pages, False),
        ("man", rs.man_pages, True),
        ("python", rs.python_docs, False),
        ("python", rs.python_docs, True),
    ]:
        documents, queries, relevant = build(n_queries=n_queries, questions=questions)
        vectors = cached_vectors(name, [text for _, text in documents])
        db = vibes.Database(directory / f"{name}-{int(questions)}.db")
        collection = db.collection(name, model="minilm")
        if not collection.exists:
            collection.embed_multi(
                (
                    {"id": doc_id, "content": text, "vector": vector.tolist()}
                    for (doc_id, text), vector in zip(documents, vectors)
                ),
                store=True,
                batch_size=1000,
            )
        label = f"{name}{' questions' if questions else ''}"
        print(f"\n{label}: {len(documents):,} documents, {len(queries)} queries")
        print(f"  {'':24} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7}")
        texts = [text for _, text in queries]
        figures = {}
        for variant, options in variants:
            found = collection.search_many(texts, n=100, **options)
            runs = {qid: [m.id for m in hits] for (qid, _), hits in zip(queries, found)}
            metrics = rs.evaluate(runs, relevant)
            figures[variant] = metrics
            print(
                f"  {variant:24} {metrics['ndcg@10']:8.3f} {metrics['recall@10']:7.3f} "
                f"{metrics['recall@100']:7.3f}"
            )
        best_leg = max(figures["vector"]["ndcg@10"], figures["text"]["ndcg@10"])
        hybrid = figures["hybrid (default)"]["ndcg@10"]
        print(
            f"  hybrid (default) vs the better single leg: {hybrid - best_leg:+.3f} nDCG@10 "
            f"({(hybrid / best_leg - 1) * 100:+.1f}%)"
        )
        db.close()


class HashModel(EmbeddingModel):
    """384-d vectors from the hashes of a text's words: costs microseconds, so that
    timings show the search, not the model."""

    model_id = "bench-hash"
    dimensions = 384

    def embed_batch(self, items: Sequence[str | bytes]) -> list[list[float]]:
        rows = []
        for item in items:
            vector = np.zeros(self.dimensions, dtype=np.float32)
            text = item.decode() if isinstance(item, bytes) else item
            for word in text.lower().split():
                digest = hashlib.md5(word.encode()).digest()
                vector[int.from_bytes(digest[:4], "little") % self.dimensions] += 1.0
            rows.append(vector.tolist())
        return rows


def median_ms(call, rounds: int) -> float:
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def latency(directory: Path, sizes: Sequence[int]) -> None:
    print("\n== latency: median ms per query; real text (man pages, docstrings), hash vectors")
    documents = rs.filler_documents(max(sizes))
    _, queries, _ = rs.man_pages(n_queries=200, questions=True)
    texts = [text for _, text in queries]
    print(f"  {'items':>8} {'vector':>8} {'hybrid':>8} {'added':>8} {'text only':>10}")
    for size in sizes:
        db = vibes.Database(directory / f"latency-{size}.db")
        collection = db.collection("c", model=HashModel())
        # filler_documents repeats a few ids (the last copy is kept): rename the repeats.
        seen: set[str] = set()
        unique = []
        for doc_id, text in documents[:size]:
            while doc_id in seen:
                doc_id += "~"
            seen.add(doc_id)
            unique.append((doc_id, text))
        collection.embed_multi(unique, store=True, batch_size=2000)
        for mode in MODES:  # warm the matrix, the index and the page cache
            collection.search(texts[0], 10, mode=mode)

        def timed(mode: str, searched: vibes.Collection = collection) -> float:
            return median_ms(lambda i: searched.search(texts[i], 10, mode=mode), len(texts))

        vector, hybrid, text = timed("vector"), timed("hybrid"), timed("text")
        print(f"  {size:>8,} {vector:8.2f} {hybrid:8.2f} {hybrid - vector:8.2f} {text:10.2f}")
        db.close()


def ingest(directory: Path, rounds: int) -> None:
    rows = [{"id": p, "content": d} for p, d in debian.descriptions()[:5000]]
    data = directory / "debian.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"\n== ingest: vibes embed-multi of {len(rows):,} Debian descriptions, MiniLM")
    times: dict[str, list[float]] = {"with full-text index": [], "--no-fts": []}
    variants = [("with full-text index", []), ("--no-fts", ["--no-fts"])]
    command = [sys.executable, "-m", "vibes", "embed-multi", "d", str(data), "--store"]
    # A first run, not counted, brings torch and the model into the page cache.
    subprocess.run([*command, "-d", str(directory / "warm.db")], check=True, capture_output=True)
    for round_number in range(rounds):
        # Alternate which goes first, so that neither always follows the other.
        for label, extra in variants if round_number % 2 == 0 else variants[::-1]:
            db = directory / f"ingest-{round_number}-{len(extra)}.db"
            start = time.perf_counter()
            subprocess.run([*command, *extra, "-d", str(db)], check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
    with_fts, without = (statistics.median(t) for t in times.values())
    print(f"  with full-text index: {with_fts:6.2f} s   --no-fts: {without:6.2f} s")
    print(f"  keeping the index in step costs {(with_fts / without - 1) * 100:+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=800)
    parser.add_argument("--sizes", default="5000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: quality,latency,ingest")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        if "quality" not in skip:
            quality(directory, args.queries)
        if "latency" not in skip:
            latency(directory, [int(s) for s in args.sizes.split(",")])
        if "ingest" not in skip:
            ingest(directory, args.rounds)


if __name__ == "__main__":
    main()

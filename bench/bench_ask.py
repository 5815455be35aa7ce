"""``vibes ask`` through its Python API: what retrieval puts in the prompt, and what vibes
itself adds to the time to the first token.

1. Context recall: the question sets of ``retrieval_sets.py`` (the machine's man pages,
   Python's docstrings; each query a one-line summary turned into a question) stored in a
   vibes collection with all-MiniLM-L6-v2 vectors and their text. Each question goes
   through ``vibes.ask.prepare`` (retrieve and pack, no model called) in vector and in
   hybrid mode with the default budget; a question is recalled when a relevant document
   is among the packed sources. Prints context recall, the share of questions with a
   relevant document among the search's top hits (before packing), the prompt size in
   tokens as ``prepare`` counts them (sources block and whole prompt), the sources packed,
   and the questions refused (no hit close enough).
2. Time to first token: real text (``retrieval_sets.filler_documents``) with vectors from
   a cheap hash model (so that the embedding model's time is left out), against the fake
   OpenAI-compatible chat server of ``tests/fake_chat.py`` (a real local HTTP server).
   The median time from ``vibes.ask.ask(..., stream=True)`` to its first piece, and that
   of the bare chat request (the same messages through the model's ``stream()``), in the
   same run, alternated; the difference is vibes' own overhead (retrieval and packing),
   whose target is at most 100 ms at 100,000 chunks. ``prepare`` alone is timed too.

    python bench/bench_ask.py [--queries 800] [--sizes 5000,100000] [--ttft-queries 50]
                              [--skip recall,ttft] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import retrieval_sets as rs  # noqa: E402
from bench_hybrid import HashModel, cached_vectors  # noqa: E402
from fake_chat import KEY, FakeChat  # noqa: E402

import vibes  # noqa: E402
from vibes.ask import (  # noqa: E402
    DEFAULT_N,
    AskWarning,
    Prepared,
    StreamingAnswer,
    ask,
    prepare,
)
from vibes.ask.answer import MESSAGE_OVERHEAD  # noqa: E402
from vibes.ask.pack import approximate_tokens  # noqa: E402
from vibes.collection import DuplicateWarning  # noqa: E402
from vibes.llms.openai import OpenAIChatModel  # noqa: E402

ASK_MODES = ("vector", "hybrid")
#: The overhead vibes may add to the time to the first token at 100,000 chunks.
TARGET_MS = 100.0


def prompt_tokens(prepared: Prepared) -> int:
    """The whole prompt's size, counted as ``prepare`` counts it (about 4 characters a
    token without a model, plus the per-message overhead)."""
    return sum(approximate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in prepared.messages)


def recall(directory: Path, n_queries: int) -> None:
    print("== context recall: a relevant document among the packed sources (default budget)")
    for name, build in (("man", rs.man_pages), ("python", rs.python_docs)):
        documents, queries, relevant = build(n_queries=n_queries, questions=True)
        vectors = cached_vectors(name, [text for _, text in documents])
        db = vibes.Database(directory / f"{name}.db")
        collection = db.collection(name, model="minilm")
        with warnings.catch_warnings():
            # A set may repeat an id (python: a property's getter and setter); the last
            # document is kept, as the note below says.
            warnings.simplefilter("ignore", DuplicateWarning)
            collection.embed_multi(
                (
                    {"id": doc_id, "content": text, "vector": vector.tolist()}
                    for (doc_id, text), vector in zip(documents, vectors)
                ),
                store=True,
                batch_size=1000,
            )
        repeated = len(documents) - len({doc_id for doc_id, _ in documents})
        print(
            f"\n{name} questions: {len(documents):,} documents ({collection.count():,} ids; "
            f"{repeated} repeated), {len(queries)} questions, "
            f"{statistics.mean(len(r) for r in relevant.values()):.2f} relevant each"
        )
        print(
            f"  {'mode':8} {'recall':>7} {f'top {DEFAULT_N}':>7} {'refused':>8} "
            f"{'sources':>8} {'src tok':>8} {'med':>6} {'prompt':>7} {'med':>6} "
            f"{'cut':>5} {'ms':>6}"
        )
        texts = [text for _, text in queries]
        for mode in ASK_MODES:
            found = collection.search_many(texts, n=DEFAULT_N, mode=mode)
            in_hits = sum(
                bool({m.id for m in hits} & relevant[qid]) for (qid, _), hits in zip(queries, found)
            )
            recalled = refused = cut = 0
            source_tokens: list[int] = []
            prompts: list[int] = []
            counts: list[int] = []
            times: list[float] = []
            for qid, text in queries:
                start = time.perf_counter()
                prepared = prepare(collection, text, mode=mode)
                times.append((time.perf_counter() - start) * 1000)
                if prepared.reason is not None:
                    refused += 1
                packed = {source.id for source in prepared.sources}
                recalled += bool(packed & relevant[qid])
                source_tokens.append(prepared.tokens)
                prompts.append(prompt_tokens(prepared))
                counts.append(len(prepared.sources))
                cut += any(source.truncated for source in prepared.sources)
            total = len(queries)
            print(
                f"  {mode:8} {recalled / total:7.3f} {in_hits / total:7.3f} {refused:8d} "
                f"{statistics.mean(counts):8.2f} {statistics.mean(source_tokens):8.0f} "
                f"{statistics.median(source_tokens):6.0f} {statistics.mean(prompts):7.0f} "
                f"{statistics.median(prompts):6.0f} {cut / total:5.2f} "
                f"{statistics.median(times):6.1f}"
            )
        db.close()
    print(
        "\n  recall: relevant document packed; top N: among the search's top N hits;"
        "\n  refused: no hit close enough (no model would be asked); sources: mean packed;"
        "\n  src tok: sources block tokens (mean, median); prompt: all messages (mean, median);"
        "\n  cut: share of prompts whose last source was cut to fit; ms: median prepare()"
        " time, MiniLM embedding of the question included"
    )


def first_piece_ms(pieces: Iterator[str], start: float) -> float:
    """Milliseconds from ``start`` to the first of ``pieces`` (the rest is read, untimed,
    so that the request completes)."""
    next(pieces)
    elapsed = (time.perf_counter() - start) * 1000
    for _ in pieces:
        pass
    return elapsed


def timed_ask(
    collection: vibes.Collection, question: str, options: dict[str, Any]
) -> tuple[float, float, StreamingAnswer]:
    """The time from calling ``ask(stream=True)`` to its first piece, the time it took to
    return (retrieval and packing: the request is made when the first piece is read), and
    the answer."""
    start = time.perf_counter()
    answer = ask(collection, question, stream=True, **options)
    returned = (time.perf_counter() - start) * 1000
    return first_piece_ms(iter(answer), start), returned, answer


def timed_stream(model: OpenAIChatModel, messages: list[dict[str, str]]) -> float:
    """The time from the bare chat request to its first piece."""
    start = time.perf_counter()
    return first_piece_ms(model.stream(messages), start)


def unique_ids(documents: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The documents with a repeated id (overloads, a property's getter and setter) made
    unique (``ID~2``...), so that a collection of N of them holds N items."""
    seen: dict[str, int] = {}
    unique = []
    for doc_id, text in documents:
        seen[doc_id] = seen.get(doc_id, 0) + 1
        unique.append((doc_id if seen[doc_id] == 1 else f"{doc_id}~{seen[doc_id]}", text))
    return unique


def index_kind(collection: vibes.Collection) -> str:
    """How vector searches run: ``exact`` (the whole matrix) or the approximate index."""
    state = collection.index_state()
    return state.kind if state is not None else "exact"


def ttft(directory: Path, sizes: Sequence[int], n_questions: int, profile: bool) -> None:
    print(
        "\n== time to first token against a local OpenAI-compatible server (tests/fake_chat.py);"
        "\n   real text, hash vectors; medians over questions, ask and bare request alternated"
    )
    documents = unique_ids(rs.filler_documents(max(sizes)))
    _, queries, _ = rs.man_pages(n_queries=n_questions, questions=True)
    questions = [text for _, text in queries]
    chat = FakeChat()
    chat.delay = chat.slow = 0.0
    model = OpenAIChatModel(
        "fake-chat", url=chat.url, key_name=None, key_env=None, max_retries=0, timeout=30
    )
    model.key_override = KEY
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   load average {load} on {os.cpu_count()} cores")
    print(
        f"  {'chunks':>8} {'mode':7} {'ask':>7} {'bare':>7} {'added':>7} {'paired':>7} "
        f"{'p90':>7} {'returns':>8} {'prepare':>8} {'tokens':>7}"
    )
    #: (size, mode) -> (added, p90 of the paired differences, the slowest questions)
    results: dict[tuple[int, str], tuple[float, float, list[tuple[float, str]]]] = {}
    collections = {}
    try:
        for size in sizes:
            db = vibes.Database(directory / f"ttft-{size}.db")
            collection = db.collection("c", model=HashModel())
            start = time.perf_counter()
            collection.embed_multi(documents[:size], store=True, batch_size=2000)
            built = time.perf_counter() - start
            collections[size] = collection
            for mode in ASK_MODES:
                options: dict[str, Any] = {"llm": model, "mode": mode, "min_score": -1.0}
                # Warm the vector matrix, the full-text index, the page cache and the
                # connection path before timing.
                for text in questions[:3]:
                    timed_ask(collection, text, options)
                with_ask: list[float] = []
                bare: list[float] = []
                returned: list[float] = []
                prepared_ms: list[float] = []
                tokens: list[int] = []
                for text in questions:
                    elapsed, before_request, answer = timed_ask(collection, text, options)
                    with_ask.append(elapsed)
                    returned.append(before_request)
                    tokens.append(answer.prepared.tokens)
                    bare.append(timed_stream(model, answer.messages))
                    start = time.perf_counter()
                    prepare(collection, text, **options)
                    prepared_ms.append((time.perf_counter() - start) * 1000)
                paired = [a - b for a, b in zip(with_ask, bare)]
                added = statistics.median(with_ask) - statistics.median(bare)
                p90 = statistics.quantiles(paired, n=10)[-1] if len(paired) > 1 else paired[0]
                print(
                    f"  {size:>8,} {mode:7} {statistics.median(with_ask):7.1f} "
                    f"{statistics.median(bare):7.1f} {added:7.1f} "
                    f"{statistics.median(paired):7.1f} {p90:7.1f} "
                    f"{statistics.median(returned):8.1f} {statistics.median(prepared_ms):8.1f} "
                    f"{statistics.mean(tokens):7.0f}"
                )
                slowest = sorted(zip(paired, questions), reverse=True)[:3]
                results[size, mode] = (added, p90, slowest)
            print(
                f"  ({collection.count():,} items stored with their text in {built:.0f} s; "
                f"vector search: {index_kind(collection)})"
            )
    finally:
        chat.close()
    print(
        "\n  ask: ask(stream=True) to its first piece; bare: the same messages through"
        "\n  model.stream() to its first piece; added: ask - bare (medians); paired, p90: the"
        "\n  median and 90th percentile of each question's own difference; returns: ask() until"
        "\n  it returns (retrieval and packing; the request starts at the first read); prepare:"
        "\n  prepare() alone, the same question again (warm caches); tokens: sources block"
        "\n  (mean). Hash-model query vectors; min_score=-1 so that every question reaches"
        "\n  the model."
    )
    largest = max(sizes)
    over = None
    print(f"\n  target: at most {TARGET_MS:.0f} ms added at {largest:,} chunks")
    for mode in ASK_MODES:
        added, p90, slowest = results[largest, mode]
        verdict = "within" if added <= TARGET_MS else "OVER"
        print(f"  {mode:7} {added:6.1f} ms median ({verdict}), p90 {p90:.1f} ms; slowest:")
        for ms, text in slowest:
            print(f"    {ms:6.1f} ms  {text[:80]}")
        if added > TARGET_MS and (over is None or added > results[largest, over][0]):
            over = mode
    if profile or over is not None:
        worst = over or max(ASK_MODES, key=lambda m: results[largest, m][0])
        profile_prepare(collections[largest], questions, worst, model)
    for collection in collections.values():
        collection.database.close()


def profile_prepare(
    collection: vibes.Collection, questions: Sequence[str], mode: str, model: Any
) -> None:
    print(
        f"\n== profile: prepare() of {len(questions)} questions in {mode} mode at "
        f"{collection.count():,} items"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for text in questions:
        prepare(collection, text, llm=model, mode=mode, min_score=-1.0)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--queries", type=int, default=800, help="questions per recall set")
    parser.add_argument("--sizes", default="5000,100000")
    parser.add_argument("--ttft-queries", type=int, default=50)
    parser.add_argument("--skip", default="", help="comma-separated: recall,ttft")
    parser.add_argument("--profile", action="store_true", help="profile prepare() anyway")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.simplefilter("ignore", AskWarning)
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        # No saved default LLM: prepare() counts tokens without a model, at the default budget.
        os.environ["VIBES_HOME"] = str(directory / "home")
        os.environ.pop("VIBES_LLM", None)
        if "recall" not in skip:
            recall(directory, args.queries)
        if "ttft" not in skip:
            sizes = [int(s) for s in args.sizes.split(",")]
            ttft(directory, sizes, args.ttft_queries, args.profile)


if __name__ == "__main__":
    main()

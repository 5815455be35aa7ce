"""embed-multi end to end (read, embed, store) against sentence-transformers' own encode.

Both sides use the same loaded all-MiniLM-L6-v2 on the same texts: the standard library's
docstrings. The baseline is the fastest a user could go with sentence-transformers
alone: one ``encode`` call over every text, keeping nothing. vibes reads the JSONL
file, hashes, embeds in batches and commits each batch to SQLite.

    python bench/bench_embed_multi.py [--limit N] [--rounds R]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_timer import ModelTimer

ROOT = Path(__file__).resolve().parent.parent


def corpus(limit: int) -> bytes:
    script = ROOT / "examples" / "stdlib_docstrings.py"
    output = subprocess.run([sys.executable, str(script)], capture_output=True, check=True)
    lines = output.stdout.splitlines(keepends=True)[:limit]
    return b"".join(lines)


def run_vibes(data: bytes, directory: Path, round_number: int) -> float:
    import vibes
    from vibes.ingest import ColumnSpec, read_rows, rows_to_items

    db = vibes.Database(directory / f"bench-{round_number}.db")
    start = time.perf_counter()
    rows = read_rows(io.BytesIO(data), "stdlib.jsonl")
    items = rows_to_items(rows, ColumnSpec(content_columns=("docstring",)))
    stats = db.collection("stdlib").embed_multi(items, store=True)
    elapsed = time.perf_counter() - start
    assert stats.embedded + stats.reused == data.count(b"\n"), stats
    db.close()
    return elapsed


def run_baseline(texts: list[str], model) -> float:
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    elapsed = time.perf_counter() - start
    assert vectors.shape == (len(texts), 384)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="how many docstrings")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    args = parser.parse_args()

    import vibes

    data = corpus(args.limit)
    texts = [json.loads(line)["docstring"] for line in data.splitlines()]
    model = vibes.get_model("minilm")
    st_model = model.load()  # the very same SentenceTransformer object for both sides
    st_model.encode(texts[:64])  # warm-up
    timer = ModelTimer(model)
    baseline_times, vibes_times, outside_model = [], [], []
    with tempfile.TemporaryDirectory() as directory:
        for round_number in range(args.rounds):
            baseline_times.append(run_baseline(texts, st_model))
            timer.reset()
            vibes_times.append(run_vibes(data, Path(directory), round_number))
            outside_model.append(vibes_times[-1] - timer.seconds)
    best_baseline, best_vibes = min(baseline_times), min(vibes_times)
    n = len(texts)
    print(f"texts: {n} standard-library docstrings, mean {sum(map(len, texts)) / n:.0f} chars")
    print(
        f"sentence-transformers encode : {n / best_baseline:8.1f} texts/s  (best of {args.rounds})"
    )
    print(f"vibes embed_multi end to end : {n / best_vibes:8.1f} texts/s  (best of {args.rounds})")
    print(f"ratio vibes / baseline       : {best_baseline / best_vibes:8.2f}  (target >= 0.90)")
    share = min(outside_model) / best_vibes
    print(f"vibes time outside the model : {min(outside_model):8.3f} s  ({share:.1%} of its run)")


if __name__ == "__main__":
    main()

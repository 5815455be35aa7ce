"""The fast path (ONNX Runtime) against sentence-transformers on PyTorch, on real text.

1. ``vibes embed-multi`` end to end, each a whole new process, on short texts (Debian
   package descriptions) and on long ones (man pages, which the model cuts at 256
   tokens): texts/s for PyTorch, ONNX fp32 and ONNX int8, against sentence-transformers'
   own ``encode`` (batch 32, the texts in memory, imports and loading not counted) run in a
   separate process of its own in the same run. Peak memory of every process, and the
   cosine of every stored vector to sentence-transformers'.
2. One-shot searches as whole new processes on a 63,000-item indexed collection:
   ``vibes similar C -c TEXT`` and ``vibes embed C ID -c TEXT`` on each runtime, with
   ``vibes similar C ID`` (which loads no model) as the floor.

    python bench/bench_fast_models.py [--short 5000] [--long 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VIBES = [sys.executable, "-m", "vibes"]
#: (label, environment, model) for each way vibes can run the default model.
RUNTIMES = [
    ("torch", {"VIBES_RUNTIME": "torch"}, "minilm"),
    ("onnx fp32", {}, "minilm"),
    ("onnx int8", {}, "minilm-int8"),
]

BASELINE = """
import json, sys, time
import numpy as np
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(sys.argv[2], device="cpu")
model.encode(texts[:8])
start = time.perf_counter()
vectors = model.encode(texts, batch_size=32, convert_to_numpy=True)
print(time.perf_counter() - start)
np.save(sys.argv[3], vectors)
"""


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of a whole process."""
    start = time.perf_counter()
    done = subprocess.run(
        command, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return wall, done.stdout


def peak_of(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and stdout of ``command`` alone: a fresh parent runs
    it, so that the kernel's peak of its children is this process's own."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "wall = time.perf_counter() - start\n"
        "if done.returncode: sys.exit(done.stderr.decode()[-500:])\n"
        "sys.stdout.write(done.stdout.decode())\n"
        "print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    _, out = measured([sys.executable, "-c", probe, *command], env)
    *lines, last = out.strip().splitlines() or [""]
    wall, peak = last.split()
    return float(wall), int(peak), "\n".join(lines)


def short_texts(count: int) -> list[str]:
    from debian import descriptions

    texts = sorted({d for _, d in descriptions()})
    random.Random(0).shuffle(texts)
    return texts[:count]


def long_texts(count: int) -> list[str]:
    from retrieval_sets import MAN_ROOT, _is_page, rendered_man_pages

    pages = sorted(p for p in (MAN_ROOT / "man1").iterdir() if p.is_file() and _is_page(p))
    random.Random(0).shuffle(pages)
    texts: list[str] = []
    for start in range(0, len(pages), count):
        rendered = rendered_man_pages(pages[start : start + count])
        texts += [" ".join(t.split()) for t in rendered.values() if len(t) > 2000]
        if len(texts) >= count:
            break
    return texts[:count]


def stored_vectors(db: Path, ids: list[str]) -> np.ndarray:
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("select id, embedding from embeddings"))
    return np.stack([np.frombuffer(rows[i], dtype="<f4") for i in ids])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def bench_embed(name: str, texts: list[str], work: Path, model_dir: str) -> None:
    print(
        f"\n{name}: {len(texts):,} texts, mean {sum(map(len, texts)) / len(texts):,.0f} characters"
    )
    corpus = work / f"{name}.json"
    corpus.write_text(json.dumps(texts))
    lines = work / f"{name}.jsonl"
    ids = [f"t{i}" for i in range(len(texts))]
    lines.write_text(
        "".join(json.dumps({"id": i, "content": t}) + "\n" for i, t in zip(ids, texts))
    )
    reference = work / f"{name}.npy"
    wall, peak, out = peak_of(
        [sys.executable, "-c", BASELINE, str(corpus), model_dir, str(reference)]
    )
    encode = float(out.strip().splitlines()[-1])
    expected = np.load(reference)
    base_rate = len(texts) / encode
    print(
        f"  sentence-transformers encode: {base_rate:7.1f} texts/s ({encode:.1f} s; whole "
        f"script with imports {wall:.1f} s, peak {peak} MB)"
    )
    for label, env, model in RUNTIMES:
        db = work / f"{name}-{label.replace(' ', '-')}.db"
        command = [*VIBES, "embed-multi", "c", str(lines), "-m", model, "-d", str(db)]
        wall, peak, _ = peak_of(command, env)
        agreement = cosines(stored_vectors(db, ids), expected)
        rate = len(texts) / wall
        print(
            f"  vibes embed-multi, {label:9}: {rate:7.1f} texts/s end to end ({wall:.1f} s), "
            f"{rate / base_rate:4.2f}x encode; peak {peak} MB; cosine min {agreement.min():.5f} "
            f"mean {agreement.mean():.5f}"
        )


def bench_one_shot(work: Path, runs: int) -> None:
    from debian import database, descriptions

    pairs = descriptions()
    db = database(work, pairs)
    subprocess.run([*VIBES, "index", "debian", "-d", str(db)], check=True, capture_output=True)
    print(f"\none-shot commands, new processes, {len(pairs):,} items, indexed, median of {runs}:")

    def median(make: Callable[[int], list[str]], env: dict[str, str] | None = None) -> float:
        measured(make(0), env)  # warm the file cache (and convert, the first time)
        return statistics.median(measured(make(run), env)[0] for run in range(1, runs + 1))

    floor = median(lambda _: [*VIBES, "similar", "debian", pairs[0][0], "-n", "5", "-d", str(db)])
    print(f"  vibes similar C ID (no model):        {floor:5.2f} s")
    for label, env, model in RUNTIMES:
        # Each run a new text: embed skips a text it already stored unchanged.
        similar = median(
            lambda run, model=model: [*VIBES, "similar", "debian", "-c", f"edit photos {run}",
                                      "-m", model, "-n", "5", "-d", str(db)],
            env,
        )  # fmt: skip
        embed = median(
            lambda run, label=label, model=model: [
                *VIBES, "embed", "debian", f"new-{label}-{run}", "-c",
                f"photo editor number {run}", "-m", model, "-d", str(db)],
            env,
        )  # fmt: skip
        print(f"  {label:9}: similar -c {similar:5.2f} s, embed -c {embed:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=5000)
    parser.add_argument("--long", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-one-shot", action="store_true")
    parser.add_argument("--skip-embed", action="store_true")
    args = parser.parse_args()
    import vibes

    model = vibes.get_model("minilm")
    model_dir = str(model.path)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the start")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        # Convert both variants first, so that no measured process pays for it.
        for _, env, name in RUNTIMES:
            measured([*VIBES, "embed", "-c", "warm up", "-m", name], env)
        if not args.skip_embed:
            bench_embed("short", short_texts(args.short), work, model_dir)
            bench_embed("long", long_texts(args.long), work, model_dir)
        if not args.skip_one_shot:
            bench_one_shot(work, args.runs)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

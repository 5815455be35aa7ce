"""Index builds off the write path: how long a write of precomputed vectors through the
Python API takes to return, and when the collection's index is ready, with the build in
a background process (the default) against the build inside the write (the baseline,
``$VIBES_INDEX_BUILD=inline``), in the same run.

The vectors are the ~63,000 Debian descriptions' MiniLM vectors (``debian.py``), grown
with noisy copies to ``--size``. Each mode writes them into a fresh database in batches
of 1,000, then ``vibes index C --wait`` waits for the index.

    python bench/bench_index_build.py [--size 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from debian import descriptions, vectors  # noqa: E402

#: Per-dimension noise of the copies: 0.05 makes a copy's cosine to its origin about
#: 0.71, half noise (the issue's first measurements).
NOISE = 0.05
#: Noise that puts a copy as near its origin as a real Debian description is to its
#: nearest other description (median cosine 0.84 over 2,000 of them): 1 / sqrt(1 + 384
#: x 0.033^2) = 0.84. More like a paraphrase than a half-random vector.
NEIGHBOUR_NOISE = 0.033


def grown(size: int, noise: float = NOISE) -> np.ndarray:
    """The Debian vectors, with noisy copies of them up to ``size`` rows (``noise``: the
    standard deviation added to each dimension of a unit vector)."""
    base = vectors(descriptions())
    if size <= len(base):
        return base[:size]
    rng = np.random.default_rng(0)
    picks = base[rng.integers(0, len(base), size - len(base))]
    noise = noise * rng.standard_normal(picks.shape).astype(np.float32)
    return np.vstack([base, picks + noise])


def run(
    mode: str, matrix: np.ndarray, directory: Path, name: str | None = None, **environment: str
) -> tuple[float, float]:
    """(seconds until the write returned, seconds until the index was ready) in a
    process of its own, so that each mode starts cold; the database is
    ``directory/NAME.db`` (NAME defaults to the mode), and ``environment`` is added to
    the process's. The vectors are read from ``directory/vectors.npy``."""
    path = directory / f"{name or mode}.db"
    script = f"""
import os, sys, time, subprocess, numpy as np, vibes
matrix = np.load({str(directory / "vectors.npy")!r})
collection = vibes.Database({str(path)!r}).collection("c")
start = time.perf_counter()
collection.embed_multi(
    ({{"id": f"i{{i}}", "vector": row}} for i, row in enumerate(matrix)), batch_size=1000
)
returned = time.perf_counter() - start
subprocess.run([sys.executable, "-m", "vibes", "index", "c", "--wait", "-d", {str(path)!r}],
               capture_output=True, check=True)
print(returned, time.perf_counter() - start)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "VIBES_INDEX_BUILD": mode, **environment},
    )
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    returned, ready = map(float, done.stdout.split())
    return returned, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    matrix = grown(args.size)
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        np.save(directory / "vectors.npy", matrix)
        print(f"{len(matrix):,} vectors of {matrix.shape[1]} dimensions, {os.cpu_count()} CPUs")
        results = {mode: run(mode, matrix, directory) for mode in ("inline", "background")}
    print(f"\n{'':34} write returned   index ready")
    for mode, (returned, ready) in results.items():
        name = "build in the write (baseline)" if mode == "inline" else "build in the background"
        print(f"  {name:<32} {returned:9.1f} s {ready:11.1f} s")
    inline, behind = results["inline"], results["background"]
    print(
        f"  the write returns {inline[0] / behind[0]:.1f}x sooner; the index is ready "
        f"{behind[1] / inline[1]:.2f}x as late"
    )


if __name__ == "__main__":
    main()

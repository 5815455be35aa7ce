"""Start-up time of `vibes --help` and `vibes collections`, against bare Python and llm.

Nothing heavy (numpy, torch, sentence-transformers) may be imported at start-up; the
baseline is the interpreter starting and exiting (`python -c pass`) in the same run.

    python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int) -> float:
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as directory:
        db = str(Path(directory) / "empty.db")
        # An empty database (reading commands never create one).
        subprocess.run([sys.executable, "-c", f"import vibes; vibes.Database({db!r})"], check=True)
        vibes = [sys.executable, "-m", "vibes"]
        commands = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
            ("vibes --help", [*vibes, "--help"]),
            ("vibes collections", [*vibes, "collections", "-d", db]),
            ("vibes models", [*vibes, "models"]),
            ("llm --help (for reference)", [str(bin_dir / "llm"), "--help"]),
        ]
        results = [(name, median_seconds(command, args.runs)) for name, command in commands]
    baseline = results[0][1]
    print(f"median of {args.runs} runs (target: vibes --help and collections under 0.300 s)")
    for name, seconds in results:
        print(f"  {name:<28} {seconds:6.3f} s   {seconds / baseline:5.1f}x bare python")


if __name__ == "__main__":
    main()

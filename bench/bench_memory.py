"""Peak memory of ``vibes embed-multi`` on inputs that could blow it up: one 50 MB line, and
a JSONL file of about 1 GB. Memory must stay bounded by the batch, whatever the input.

Each run is a fresh process that reports its own peak resident set size, so the figures
do not leak into each other. Baselines, run the same way in the same session:

- the 50 MB line: sentence-transformers' own ``encode`` of the same text with the same
  model (what a user of the library alone would run);
- the 1 GB JSONL: reading the same file line by line with ``json.loads`` and keeping
  nothing (the least any streaming reader can use). vibes stores every row: its items
  carry their vectors in an ``embedding`` column, so the model is not the bottleneck.

    python bench/bench_memory.py [--line-mb 50] [--jsonl-mb 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# Runs a job in this interpreter and writes its peak RSS in KiB to $PEAK_FILE. On Linux
# from VmHWM, the high-water mark of this program alone: ru_maxrss also counts what the
# parent held when it forked this process, which would hide anything smaller.
WRAPPER = """
import os, resource, sys
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def report():
    with open(os.environ["PEAK_FILE"], "w") as file:
        file.write(str(peak_kib()))
try:
    exec(compile(sys.argv[1], "job", "exec"))
finally:
    report()
"""

VIBES_JOB = """
sys.argv = ["vibes", *sys.argv[2:]]
from vibes.cli import main
main()
"""

ENCODE_JOB = """
import vibes
from sentence_transformers import SentenceTransformer
path = vibes.get_model("minilm").path
text = open(sys.argv[2], encoding="utf-8").read()
SentenceTransformer(str(path), device="cpu").encode([text])
"""

READ_JOB = """
import json
with open(sys.argv[2], encoding="utf-8") as file:
    for line in file:
        json.loads(line)
"""


def peak_mib(
    job: str, *args: str, directory: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Run ``job`` in a fresh interpreter; its peak memory in MiB and its seconds."""
    peak_file = directory / "peak"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, job, *args],
        env={**os.environ, "PEAK_FILE": str(peak_file), **(env or {})},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"job failed: {result.stderr.strip().splitlines()[-1:]}")
    return int(peak_file.read_text()) / 1024, elapsed


def long_line(path: Path, megabytes: int) -> None:
    words = ("memory", "bounded", "by", "the", "batch", "whatever", "the", "input")
    text = " ".join(words[i % len(words)] for i in range(megabytes * 1024 * 1024 // 7))
    path.write_text(json.dumps({"id": "huge", "text": text}) + "\n", encoding="utf-8")


def big_jsonl(path: Path, megabytes: int) -> int:
    """About ``megabytes`` of JSONL rows, each with text and a 384-dimensional vector."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1000, 384)).astype(np.float32).round(5)
    encoded = [json.dumps(v.tolist()) for v in vectors]
    rows = 0
    with open(path, "w", encoding="utf-8") as file:
        while file.tell() < megabytes * 1024 * 1024:
            for n in range(1000):
                row = {"id": f"r{rows}", "text": f"row {rows} " + "lorem ipsum " * 50}
                line = json.dumps(row)[:-1] + f', "embedding": {encoded[n]}}}\n'
                file.write(line)
                rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=int, default=50)
    parser.add_argument("--jsonl-mb", type=int, default=1024)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"One line of {options.line_mb} MB, the default model (all-MiniLM-L6-v2)")
        line_file = directory / "line.jsonl"
        long_line(line_file, options.line_mb)
        text_file = directory / "line.txt"
        text_file.write_text(json.loads(line_file.read_text())["text"], encoding="utf-8")
        db = directory / "line.db"
        vibes_peak, vibes_s = peak_mib(
            VIBES_JOB, "embed-multi", "c", str(line_file), "-d", str(db), directory=directory
        )
        base_peak, base_s = peak_mib(ENCODE_JOB, str(text_file), directory=directory)
        print(f"  vibes embed-multi        peak {vibes_peak:8.0f} MiB   {vibes_s:6.1f} s")
        print(f"  SentenceTransformer      peak {base_peak:8.0f} MiB   {base_s:6.1f} s")
        print(f"  ratio vibes / baseline   {vibes_peak / base_peak:.2f}x memory")

        print(f"\nJSONL of about {options.jsonl_mb} MB, vectors given (no model work)")
        jsonl = directory / "big.jsonl"
        rows = big_jsonl(jsonl, options.jsonl_mb)
        size_mib = jsonl.stat().st_size / 2**20
        command = ["embed-multi", "c", str(jsonl), "--store", "--model", "minilm"]
        # Reading and writing alone (the approximate index off), then with the defaults:
        # the write that crosses 20,000 items also builds the HNSW index, which holds every
        # vector in memory once (issue 17 moves that build off the write path).
        no_index = {"VIBES_INDEX_MIN_ITEMS": str(10**12)}
        read_peak, read_s = peak_mib(
            VIBES_JOB, *command, "-d", str(directory / "a.db"), directory=directory, env=no_index
        )
        full_peak, full_s = peak_mib(
            VIBES_JOB, *command, "-d", str(directory / "b.db"), directory=directory
        )
        base_peak, base_s = peak_mib(READ_JOB, str(jsonl), directory=directory)
        print(f"  {rows:,} rows, {size_mib:,.0f} MiB")
        print(f"  vibes, index off         peak {read_peak:8.0f} MiB   {read_s:6.1f} s")
        print(f"  vibes, index built       peak {full_peak:8.0f} MiB   {full_s:6.1f} s")
        print(f"  json.loads per line      peak {base_peak:8.0f} MiB   {base_s:6.1f} s")
        print(f"  index off - baseline     {read_peak - base_peak:+.0f} MiB")


if __name__ == "__main__":
    main()

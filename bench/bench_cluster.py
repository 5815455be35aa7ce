"""`vibes cluster`: 10 clusters of the ~63,000 Debian package descriptions (all-MiniLM-L6-v2
vectors, text stored) against llm-cluster 0.2 on the same database, both as a new process.

Each command is timed from start to exit, and its peak memory (resident set) is read from
the kernel's accounting of that one child (``os.wait4``). Both print the same JSON shape
(every item, content cut to 100 characters). Agreement is the adjusted Rand index between
the two clusterings; llm-cluster has no seed, so the index between two of its own runs shows
how much k-means itself varies. hdbscan (whose scikit-learn implementation grows with the
square of the size) is timed on evenly spaced subsets.

llm-cluster 0.2 imports ``get_key`` from ``llm.cli``, which llm 0.36 no longer has; it runs
here through a shim that puts ``llm.get_key`` there first (only ``--summary`` uses it) and
then starts llm's command line: ``python -c SHIM cluster debian 10 -d DB``. It reads the
stored vectors itself, so no embedding model is loaded by either command.

    pip install -c constraints.txt -e '.[bench]'      # llm-cluster
    python bench/bench_cluster.py [--size N] [--runs 3] [--hdbscan 2000,5000,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from debian import CACHE, descriptions, vectors

SHIM = (
    "import sys, llm, llm.cli\n"
    "if not hasattr(llm.cli, 'get_key'): llm.cli.get_key = llm.get_key\n"
    "sys.argv[0] = 'llm'\n"
    "sys.exit(llm.cli.cli())\n"
)


def subset_database(directory: Path, pairs, matrix: np.ndarray, size: int) -> Path:
    """A vibes database of ``size`` descriptions, evenly spaced over the sorted list (all
    of them for the full size), built once per size."""
    import vibes

    path = directory / f"debian-{size}.db"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    rows = np.linspace(0, len(pairs) - 1, size).round().astype(int) if size < len(pairs) else None
    picked = range(len(pairs)) if rows is None else rows
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    collection = vibes.Database(partial).collection("debian", model="minilm")
    collection.embed_multi(
        (
            {"id": pairs[i][0], "content": pairs[i][1], "vector": matrix[i]}
            for i in (int(j) for j in picked)
        ),
        store=True,
        batch_size=5_000,
    )
    collection.database.close()
    partial.rename(path)
    indexes = Path(f"{partial}.indexes")  # the approximate index, built above 20,000 items
    if indexes.exists():
        indexes.rename(f"{path}.indexes")
    return path


# Peak memory is read in a small launcher: the kernel counts in a child's peak what it
# shared with its parent between fork and exec, so measured straight from this process
# (which holds the corpus) every command would seem to use as much as the benchmark.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "sys.stderr.write(f'\\npeak-rss-kb {usage.ru_maxrss}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """Wall seconds, peak resident bytes and stdout of ``command`` run as a new process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command], stdout=out, stderr=err, env=env
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        messages = err.read().decode()
        if done.returncode != 0:
            raise SystemExit(f"{command[:4]} failed:\n{messages[-2000:]}")
        peak = int(messages.rsplit("peak-rss-kb ", 1)[1].split()[0]) * 1024
        return seconds, peak, out.read()


def labels(output: bytes, ids: list[str]) -> np.ndarray:
    """Each id's cluster number from a JSON array of clusters (either tool's)."""
    cluster_of = {
        item["id"]: int(cluster["id"])
        for cluster in json.loads(output)
        for item in cluster["items"]
    }
    return np.array([cluster_of.get(i, -1) for i in ids])


def inertia(matrix: np.ndarray, assigned: np.ndarray) -> float:
    """k-means' objective: squared distances to the cluster means (the lower, the tighter)."""
    total = 0.0
    for cluster in np.unique(assigned[assigned >= 0]):
        members = matrix[assigned == cluster]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=0, help="descriptions (default: all)")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hdbscan", default="2000,5000,10000", help="sizes; '' for none")
    args = parser.parse_args()

    from sklearn.metrics import adjusted_rand_score

    pairs = descriptions()
    matrix = vectors(pairs)
    size = args.size or len(pairs)
    directory = CACHE / "cluster"
    path = subset_database(directory, pairs, matrix, size)
    env = {**os.environ, "VIBES_DISABLE_PLUGINS": "1", "LLM_USER_PATH": str(directory / "llm")}
    n = str(args.clusters)
    vibes_command = [sys.executable, "-m", "vibes", "cluster", "debian", n, "-d", str(path)]
    llm_command = [sys.executable, "-c", SHIM, "cluster", "debian", n, "-d", str(path)]

    vibes_runs = [measure(vibes_command, env) for _ in range(args.runs)]
    llm_runs = [measure(llm_command, env) for _ in range(max(args.runs, 2))]

    import vibes
    from vibes.analysis.points import load_points

    collection = vibes.Database(path).collection("debian")
    points = load_points(collection)
    ids = points.ids
    ours = labels(vibes_runs[0][2], ids)
    theirs = [labels(run[2], ids) for run in llm_runs]
    vibes_time = statistics.median(r[0] for r in vibes_runs)
    llm_time = statistics.median(r[0] for r in llm_runs)
    vibes_peak = max(r[1] for r in vibes_runs)
    llm_peak = max(r[1] for r in llm_runs)
    same = all(run[2] == vibes_runs[0][2] for run in vibes_runs)

    print(f"{len(ids):,} Debian descriptions x 384 dimensions, {n} clusters, new process each")
    print(f"  {'':<34} {'time (median)':>14} {'peak memory':>12}")
    for name, seconds, peak in (
        (f"llm-cluster 0.2 (shim), {len(llm_runs)} runs", llm_time, llm_peak),
        (f"vibes cluster, {len(vibes_runs)} runs", vibes_time, vibes_peak),
    ):
        print(f"  {name:<34} {seconds:12.2f} s {peak / 2**20:9.0f} MB")
    print(
        f"  vibes: {llm_time / vibes_time:.1f}x faster, {llm_peak / vibes_peak:.1f}x less "
        f"memory; target: at most half the time ({vibes_time / llm_time:.2f}) and 400 MB "
        f"({vibes_peak / 2**20:.0f} MB)"
    )
    print(f"  vibes' {len(vibes_runs)} runs printed identical output: {same}")
    agreement = adjusted_rand_score(ours, theirs[0])
    itself = adjusted_rand_score(theirs[0], theirs[1])
    print(
        f"  agreement (adjusted Rand index): vibes vs llm-cluster {agreement:.3f}; "
        f"llm-cluster vs itself {itself:.3f}"
    )
    print(
        f"  k-means objective (lower is tighter): vibes {inertia(points.vectors, ours):,.0f}, "
        f"llm-cluster {inertia(points.vectors, theirs[0]):,.0f}"
    )
    names = [(c["name"], c["size"]) for c in json.loads(vibes_runs[0][2])]
    print("  vibes' names (size): " + "; ".join(f"{name} ({count:,})" for name, count in names))

    for hdbscan_size in [int(s) for s in args.hdbscan.split(",") if s.strip()]:
        subset = subset_database(directory, pairs, matrix, min(hdbscan_size, len(pairs)))
        command = [sys.executable, "-m", "vibes", "cluster", "debian", "--algorithm", "hdbscan"]
        seconds, peak, output = measure(command + ["-d", str(subset)], env)
        found = json.loads(output)
        clustered = sum(c["size"] for c in found)
        print(
            f"  hdbscan, {hdbscan_size:,} items: {seconds:.1f} s, {peak / 2**20:.0f} MB, "
            f"{len(found)} clusters, {hdbscan_size - clustered:,} unclustered"
        )


if __name__ == "__main__":
    main()

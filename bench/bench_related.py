"""Related items on real embeddings: ``vibes related`` over the ~63,000 Debian package
descriptions (all-MiniLM-L6-v2), against the ways a user would otherwise get them.

- build: every item's 10 nearest neighbours, exactly, into the database (the command,
  as a process, end to end), and peak memory;
- update: 100 items changed (new vectors written with plain SQL, as ``llm`` does), then
  the next read applies them, incrementally;
- baselines in the same run: ``llm similar`` for each item through llm 0.36's Python
  API (timed on a sample, scaled to every item), and vibes' own search run once per
  item (``similar_by_id``, what a script over ``vibes similar`` would do); Simon
  Willison's TIL site reports 27 s for its 446 items with openai-to-sqlite.

    python bench/bench_related.py [--limit N] [--llm-sample 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import debian  # noqa: E402

import vibes  # noqa: E402
from vibes import vectors as vector_format  # noqa: E402
from vibes.analysis import related as relations  # noqa: E402

TIL_SECONDS, TIL_ITEMS = 27.0, 446


def command(*args: str) -> tuple[float, float, str]:
    """Seconds, peak memory (MB) and stdout of one vibes command as a process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "vibes", *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    # wait4 gives this child's own peak memory (RUSAGE_CHILDREN is the largest of all).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"vibes {' '.join(args)} failed ({process.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def llm_seconds_per_item(path: Path, ids: list[str], sample: int) -> float:
    """llm's own similar(), one item at a time, as a script over llm would do it."""
    import llm
    import sqlite_utils

    collection = llm.Collection("debian", sqlite_utils.Database(str(path)), create=False)
    started = time.perf_counter()
    for item_id in ids[:sample]:
        collection.similar_by_id(item_id, number=10)
    return (time.perf_counter() - started) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="use the first N descriptions")
    parser.add_argument("--llm-sample", type=int, default=20)
    args = parser.parse_args()
    pairs = debian.descriptions()
    if args.limit:
        pairs = pairs[: args.limit]
    with tempfile.TemporaryDirectory() as directory:
        path = debian.database(Path(directory), pairs)
        items = len(pairs)
        print(f"== related items: {items:,} Debian package descriptions (all-MiniLM-L6-v2)")

        seconds, peak, output = command("related", "debian", "-n", "10", "-d", str(path))
        status = json.loads(output)
        print(
            f"  vibes related debian -n 10      {seconds:7.1f} s   peak {peak:6.0f} MB   "
            f"({status['items']:,} lists; target at most 60 s)"
        )
        per_item = seconds / items
        til_per_item = TIL_SECONDS / TIL_ITEMS
        print(
            f"  per item                        {per_item * 1000:7.2f} ms   TIL site "
            f"(openai-to-sqlite) {til_per_item * 1000:.0f} ms: {til_per_item / per_item:,.0f}x"
        )

        # 100 items change behind vibes' back (plain SQL, as llm writes), then a read.
        rng = np.random.default_rng(1)
        conn = sqlite3.connect(path)
        (cid,) = conn.execute("SELECT id FROM collections WHERE name = 'debian'").fetchone()
        ids = [
            row[0]
            for row in conn.execute("SELECT id FROM embeddings WHERE collection_id = ?", (cid,))
        ]
        chosen = rng.choice(len(ids), 100, replace=False)
        with conn:
            for row in chosen.tolist():
                vector = rng.normal(size=384).astype(np.float32)
                conn.execute(
                    "UPDATE embeddings SET embedding = ? WHERE collection_id = ? AND id = ?",
                    (vector_format.encode(vector.tolist()), cid, ids[row]),
                )
        conn.close()
        collection = vibes.Database(path).collection("debian")
        started = time.perf_counter()
        updated = relations.update_related(collection)
        update_seconds = time.perf_counter() - started
        assert updated is not None
        print(
            f"  update after 100 changed items  {update_seconds:7.2f} s   "
            f"({updated.updated:,} lists rewritten; target at most 1 s)"
        )
        # The update is exact: a sample of lists equals a fresh exact search (scores
        # compared, since identical descriptions tie and may come in either order).
        sample = [ids[row] for row in rng.choice(len(ids), 200, replace=False).tolist()]
        stored = collection.database.store.related(collection.id, sample)
        agree = 0
        for item_id in sample:
            fresh = collection.similar_by_id(item_id, 10, exact=True)
            agree += bool(
                np.allclose([s for _, s in stored[item_id]], [m.score for m in fresh], atol=2e-5)
            )
        print(f"  lists equal to exact search     {agree}/{len(sample)}")

        seconds_read, _, _ = command("related", "debian", ids[0], "-d", str(path))
        print(f"  vibes related debian ID         {seconds_read * 1000:7.0f} ms (a process)")

        # Baselines, same run: a search per item, through vibes and through llm.
        sample_ids = ids[:200]
        started = time.perf_counter()
        for item_id in sample_ids:
            collection.similar_by_id(item_id, 10, exact=True)
        vibes_each = (time.perf_counter() - started) / len(sample_ids)
        print(
            f"  baseline: vibes similar per item {vibes_each * items:6.1f} s for all "
            f"({vibes_each * 1000:.1f} ms each): "
            f"related is {vibes_each * items / seconds:.1f}x faster"
        )
        llm_each = llm_seconds_per_item(path, ids, args.llm_sample)
        print(
            f"  baseline: llm similar per item  {llm_each * items / 60:6.0f} min for all "
            f"({llm_each * 1000:.0f} ms each, {args.llm_sample} timed): "
            f"related is {llm_each * items / seconds:,.0f}x faster"
        )
        collection.database.close()


if __name__ == "__main__":
    main()

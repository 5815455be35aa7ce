"""`vibes classify` and `vibes duplicates` on the 63,436 Debian package descriptions.

Classify: each package's label is its Debian section (``Section:`` in ``apt-cache
dumpavail``: libs, python, games...). vibes holds out 20% of each section, fits nearest
centroids on the rest and reports the held-out accuracy; scikit-learn's
``NearestCentroid`` is fitted and asked on the same split of the same (unit) vectors in
the same run, and every prediction must agree.

Duplicates: every pair of descriptions at cosine 0.95 or more, by blocked products, its
time and peak memory (numpy's allocations, traced), against the naive full ``n x n``
product at a size where that fits (20,000 by default); both must find the same pairs.

    python bench/bench_classify.py [--naive-size 20000] [--threshold 0.95]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from debian import database, descriptions, vectors  # noqa: E402


def sections() -> dict[str, str]:
    """Each package's Debian section, without its archive area (``contrib/net`` is net)."""
    output = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True).stdout
    found: dict[str, str] = {}
    package = None
    for line in output.splitlines():
        if line.startswith("Package: "):
            package = line[9:].strip()
        elif line.startswith("Section: ") and package and package not in found:
            found[package] = line[9:].strip().split("/")[-1]
    return found


def measured(function, *args, **kwargs):
    """``function``'s result, seconds taken and peak traced memory (bytes)."""
    tracemalloc.start()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def naive_pairs(matrix: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """The baseline a user would write: the whole similarity matrix, then its upper half."""
    scores = matrix @ matrix.T
    rows, columns = np.nonzero(np.triu(scores >= threshold, k=1))
    return set(zip(rows.tolist(), columns.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-size", type=int, default=20_000)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--test-size", type=float, default=0.2)
    args = parser.parse_args()

    from sklearn.neighbors import NearestCentroid

    import vibes
    from vibes.analysis.classify import Centroids, evaluate_classifier, split_labelled
    from vibes.analysis.duplicates import duplicate_pairs, find_duplicates
    from vibes.analysis.points import load_points, unit_rows

    pairs = descriptions()
    matrix = vectors(pairs)
    section_of = sections()
    labels = {package: section_of[package] for package, _ in pairs if package in section_of}
    print(
        f"{len(pairs):,} Debian descriptions x {matrix.shape[1]} dimensions; "
        f"{len(labels):,} with a section, {len(set(labels.values()))} sections"
    )

    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        path = database(Path(directory), pairs)
        print(f"(database built in {time.perf_counter() - start:.1f} s)")
        collection = vibes.Database(path).collection("debian")

        # -- classify -----------------------------------------------------------------------
        print("\n== classify --evaluate: sections, 20% of each held out")
        evaluation, vibes_seconds, vibes_peak = measured(
            evaluate_classifier, collection, labels, test_size=args.test_size, seed=0
        )
        # scikit-learn on the same unit vectors and the same split.
        points = load_points(collection)
        row_of = {item_id: i for i, item_id in enumerate(points.ids)}
        ids = sorted(labels)
        names = [labels[i] for i in ids]
        train, test = split_labelled(names, args.test_size, 0)
        x_train = points.vectors[[row_of[ids[i]] for i in train]]
        x_test = points.vectors[[row_of[ids[i]] for i in test]]
        y_train = [names[i] for i in train]
        start = time.perf_counter()
        reference = NearestCentroid().fit(x_train, y_train)
        expected = reference.predict(x_test)
        sklearn_seconds = time.perf_counter() - start
        start = time.perf_counter()
        fitted = Centroids.fit(x_train, y_train)
        ours, _, _ = fitted.predict(x_test)
        core_seconds = time.perf_counter() - start
        held = [evaluation.predictions[ids[i]] for i in test]
        agree = np.mean(np.asarray(held) == expected)
        agree_core = np.mean(np.asarray(ours) == expected)
        truth = np.asarray([names[i] for i in test])
        sklearn_accuracy = float(np.mean(expected == truth))
        print(
            f"vibes accuracy {evaluation.accuracy:.4f} on {evaluation.test:,} held-out "
            f"(fitted on {evaluation.train:,}); scikit-learn {sklearn_accuracy:.4f}"
        )
        print(f"agreement with NearestCentroid: {agree:.2%} of predictions ({agree_core:.2%} core)")
        # The alternative rule, for the record: the angle to each centroid's direction.
        directions = unit_rows(fitted.centroids)
        by_angle = np.asarray(fitted.labels)[np.argmax(x_test @ directions.T, axis=1)]
        print(
            f"(cosine to normalised centroids instead would score {np.mean(by_angle == truth):.4f}"
            "; most frequent section alone "
            f"{max(np.mean(truth == s) for s in set(truth)):.4f})"
        )
        print(
            f"time: vibes evaluate (reading {len(points):,} vectors included) "
            f"{vibes_seconds:.2f} s, peak {vibes_peak / 2**20:.0f} MiB; fit+predict alone "
            f"{core_seconds:.3f} s vs scikit-learn {sklearn_seconds:.3f} s "
            f"({sklearn_seconds / core_seconds:.1f}x)"
        )
        labels_file = Path(directory) / "labels.csv"
        labels_file.write_text("id,label\n" + "".join(f"{i},{labels[i]}\n" for i in ids))
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vibes", "classify", "debian", "-d", str(path)]
            + ["--labels", str(labels_file), "--evaluate"],
            capture_output=True,
            text=True,
        )
        print(
            f"'vibes classify --evaluate' as a command: {time.perf_counter() - start:.2f} s "
            f"(exit {done.returncode})"
        )

        # -- duplicates ---------------------------------------------------------------------
        print(f"\n== duplicates at {args.threshold}")
        found, seconds, peak = measured(find_duplicates, collection, args.threshold)
        full_size = len(points) ** 2 * 4
        print(
            f"all {len(points):,}: {len(found):,} pairs in {seconds:.1f} s, peak "
            f"{peak / 2**20:.0f} MiB (the vectors themselves {points.vectors.nbytes / 2**20:.0f}"
            f" MiB; a full n x n float32 matrix would be {full_size / 2**30:.1f} GiB)"
        )
        if found:
            best = found[0]
            print(f"  e.g. {best.id} ~ {best.other_id} ({best.score})")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vibes", "duplicates", "debian", "-d", str(path)]
            + ["-t", str(args.threshold)],
            capture_output=True,
            text=True,
        )
        print(
            f"'vibes duplicates' as a command: {time.perf_counter() - start:.1f} s, "
            f"{len(done.stdout.splitlines()):,} lines (exit {done.returncode})"
        )

        size = min(args.naive_size, len(points))
        sample = unit_rows(matrix[:size])
        (rows, columns, _), blocked_seconds, blocked_peak = measured(
            duplicate_pairs, sample, args.threshold
        )
        naive, naive_seconds, naive_peak = measured(naive_pairs, sample, args.threshold)
        blocked = set(zip(rows.tolist(), columns.tolist()))
        # Any difference can only be a pair within float32 rounding of the threshold.
        same = "yes" if naive == blocked else f"no, {len(naive ^ blocked)} differ"
        print(
            f"first {size:,}: blocked {blocked_seconds:.2f} s, peak {blocked_peak / 2**20:.0f}"
            f" MiB; naive n x n {naive_seconds:.2f} s, peak {naive_peak / 2**20:.0f} MiB "
            f"-> {naive_seconds / blocked_seconds:.2f}x the time, "
            f"{naive_peak / blocked_peak:.1f}x the memory; same {len(naive):,} pairs: {same}"
        )
        collection.database.close()


if __name__ == "__main__":
    main()

"""`vibes plot` on the ~63,000 Debian package descriptions: a working HTML map in how long?

Every run of vibes is a new process (`vibes plot ...`), timed end to end: start-up,
reading the vectors, projecting, colouring, writing the page or image. The baseline is
what a user would otherwise write, also as a new process: read the vectors from the same
SQLite file, scikit-learn's PCA, a matplotlib scatter saved as PNG.

When Chromium is installed, the page is also opened headless to time how long it takes to
show (parse the data, draw every point) and one redraw (what panning and zooming cost).

    python bench/bench_plot.py [--size N] [--no-umap]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from debian import database, descriptions, vectors  # noqa: E402

BASELINE = """
import sqlite3, sys
import numpy as np
from sklearn.decomposition import PCA
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

db, output = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db)
rows = conn.execute(
    "SELECT embedding FROM embeddings WHERE collection_id = "
    "(SELECT id FROM collections WHERE name = 'debian')"
).fetchall()
matrix = np.vstack([np.frombuffer(blob, dtype="<f4") for (blob,) in rows])
xy = PCA(n_components=2).fit_transform(matrix)
figure, axes = plt.subplots(figsize=(12, 9), dpi=100)
axes.scatter(xy[:, 0], xy[:, 1], s=1, alpha=0.3)
figure.savefig(output)
print(len(matrix))
"""

# Injected into a copy of the page: how long until it has drawn, and one redraw.
PROBE = """<script>
window.__start = performance.now();
window.addEventListener("load", function () {
  var shown = performance.now() - window.__start, plot = window.vibesPlot;
  var t = performance.now();
  for (var i = 0; i < 10; i++) plot.draw();
  var c = document.getElementById("map");
  c.getContext("2d").getImageData(0, 0, 1, 1);
  var out = {shown: shown, redraw: (performance.now() - t) / 10, points: plot.points};
  var node = document.createElement("pre");
  node.id = "probe";
  node.textContent = JSON.stringify(out);
  document.body.appendChild(node);
});
</script>"""


def build(directory: Path, size: int | None) -> tuple[Path, int]:
    """A database of the first ``size`` descriptions (all by default), text stored."""
    pairs = descriptions()
    matrix = vectors(pairs)  # cached for the whole corpus; sliced, never re-embedded
    if size is not None:
        pairs, matrix = pairs[:size], matrix[:size]
    path = database(directory, pairs, matrix=matrix)
    return path, len(pairs)


def timed_run(command: list[str]) -> tuple[float, str]:
    env = {**os.environ, "VIBES_DISABLE_PLUGINS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, done.stdout


def browser(page: Path) -> dict | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        return None
    probed = page.with_name("probed.html")
    probed.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8"
    )
    done = subprocess.run(
        [found, "--headless", "--no-sandbox", "--window-size=1200,800",
         "--virtual-time-budget=60000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    return json.loads(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="only the first N descriptions")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP map")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        start = time.perf_counter()
        db, count = build(root, args.size)
        print(f"{count:,} Debian descriptions (384-d MiniLM vectors, text stored), "
              f"database built in {time.perf_counter() - start:.1f} s")  # fmt: skip
        vibes = [sys.executable, "-m", "vibes", "plot", "debian", "-d", str(db)]

        baseline_png = root / "baseline.png"
        script = root / "baseline.py"
        script.write_text(BASELINE)
        baseline, _ = timed_run([sys.executable, str(script), str(db), str(baseline_png)])

        runs = [
            ("HTML, PCA", ["-o", str(root / "map.html")]),
            ("PNG, PCA", ["-o", str(root / "map.png")]),
            ("HTML, PCA, 8 k-means clusters named", ["-o", str(root / "clusters.html"),
                                                     "--color", "cluster"]),
        ]  # fmt: skip
        if not args.no_umap:
            runs.append(("HTML, UMAP (fit on 10,000, the rest placed)",
                         ["-o", str(root / "umap.html"), "--method", "umap"]))  # fmt: skip
        keep = os.environ.get("BENCH_PLOT_KEEP")
        results = []
        for name, extra in runs:
            seconds, output = timed_run(vibes + extra)
            row = json.loads(output)
            results.append((name, seconds, row))

        page = root / "map.html"
        drawn = re.search(r'id="plot-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S)
        assert drawn is not None and len(json.loads(drawn.group(1))["id"]) == count
        shown = browser(page)
        if keep:  # BENCH_PLOT_KEEP=DIR keeps the maps, to look at them
            for made in root.glob("*.*"):
                if made.suffix in (".html", ".png") and made.name != "probed.html":
                    shutil.copy(made, Path(keep) / made.name)

    print(f"\nvibes plot, new process each, end to end ({count:,} points):")
    print(f"  {'baseline: sqlite3 + sklearn PCA + matplotlib PNG':<52} {baseline:7.1f} s   1.00x")
    for name, seconds, row in results:
        size = row["bytes"] / 1e6
        print(
            f"  {'vibes ' + name:<52} {seconds:7.1f} s   {baseline / seconds:4.2f}x"
            f"   {size:6.1f} MB   {row['reduced']}"
        )
    html_seconds = results[0][1]
    verdict = "within" if html_seconds <= 30 else "OVER"
    print(f"\nHTML map of {count:,} points in {html_seconds:.1f} s: {verdict} the 30 s target")
    if shown:
        print(
            f"Chromium (headless, software canvas): page shown in {shown['shown'] / 1000:.2f} s, "
            f"a redraw of {shown['points']:,} points {shown['redraw']:.0f} ms"
        )
    else:
        print("(Chromium not installed: the page was not timed in a browser)")


if __name__ == "__main__":
    main()

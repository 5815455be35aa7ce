"""`vibes plot` and `vibes.analysis.plot`/`.project`: PCA against scikit-learn, UMAP's
seed and sample-then-transform, the self-contained HTML page (every point, no network,
texts that cannot break out of the page, sampling said out loud), the PNG, colours by
metadata and by cluster, and one-line errors; and the page itself run in headless
Chromium."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from checks import one_line_error

import vibes
from vibes.analysis import plot as plot_module
from vibes.analysis.plot import PALETTE, plot_collection
from vibes.analysis.plot_page import script_json
from vibes.analysis.points import load_points
from vibes.analysis.project import project
from vibes.errors import VibesError
from vibes.store.base import ClusterRecord

DIMENSIONS = 16
NASTY = "</script><script>alert('x')</script><!-- & </SCRIPT >"


def blobs(count: int, groups: int, seed: int = 0, spread: float = 0.15) -> np.ndarray:
    """``count`` vectors around ``groups`` random centres, row i in group i % groups."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, DIMENSIONS))
    labels = np.arange(count) % groups
    return (centres[labels] + spread * rng.normal(size=(count, DIMENSIONS))).astype(np.float32)


@pytest.fixture
def make_collection(db_path, test_plugin):
    """A collection of ``count`` stored items around ``groups`` centres: id ``item-NNN``,
    metadata ``kind`` (its group), ``size`` (a number) and ``odd`` (on odd items only)."""

    def make(count: int = 90, groups: int = 3, name: str = "things", texts=None):
        matrix = blobs(count, groups)
        collection = vibes.Database(db_path).collection(name, model="hash")
        collection.embed_multi(
            (
                {
                    "id": f"item-{i:03d}",
                    "content": texts[i] if texts else f"thing {i} of kind {i % groups}",
                    "vector": row.tolist(),
                    "metadata": {
                        "kind": f"kind-{i % groups}",
                        "size": i * 1.5,
                        **({"odd": True} if i % 2 else {}),
                    },
                }
                for i, row in enumerate(matrix)
            ),
            store=True,
        )
        return collection

    return make


def page_data(path: Path) -> dict:
    page = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- projection ------------------------------------------------------------------------------


def test_pca_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    matrix = blobs(400, 5, seed=3, spread=0.6)
    ours = project(matrix, "pca")
    reference = PCA(n_components=2, svd_solver="full").fit_transform(matrix.astype(np.float64))
    assert ours.shape == (400, 2) and ours.dtype == np.float32
    for axis in range(2):
        sign = np.sign(ours[:, axis] @ reference[:, axis])
        assert np.allclose(ours[:, axis] * sign, reference[:, axis], atol=1e-3)
    # Same sign convention as scikit-learn (each component's largest loading positive).
    assert np.allclose(ours, reference, atol=1e-3)


def test_pca_of_points_and_of_one_dimension():
    from vibes.analysis.points import Points

    matrix = blobs(30, 2)
    wrapped = Points([f"p{i}" for i in range(30)], matrix)
    assert np.array_equal(project(wrapped), project(matrix))
    line = np.arange(10, dtype=np.float32)[:, None]
    flat = project(line)
    assert flat.shape == (10, 2)
    assert np.allclose(np.abs(flat[:, 0]), np.abs(line[:, 0] - 4.5), atol=1e-5)
    assert np.allclose(flat[:, 1], 0)
    assert np.allclose(project(np.ones((1, 4), dtype=np.float32)), 0)


@pytest.mark.parametrize(
    ("matrix", "method", "fragment"),
    [
        (np.zeros((0, 4), dtype=np.float32), "pca", "no points"),
        (np.ones((3, 4), dtype=np.float32), "tsne", "Unknown projection 'tsne'"),
        (np.array([[1.0, np.nan]], dtype=np.float32), "pca", "NaN"),
        (np.ones(4, dtype=np.float32), "pca", "(n, d) matrix"),
        (np.ones((3, 4), dtype=np.float32), "umap", "at least 5 points"),
    ],
)
def test_projection_errors(matrix, method, fragment):
    with pytest.raises(VibesError, match=re.escape(fragment)):
        project(matrix, method)


@pytest.mark.slow
def test_umap_is_seeded_and_places_unfitted_points_among_their_group():
    matrix = blobs(240, 3, seed=5, spread=0.1)
    first = project(matrix, "umap", seed=1, fit_limit=120)
    assert first.shape == (240, 2) and np.isfinite(first).all()
    assert np.array_equal(first, project(matrix, "umap", seed=1, fit_limit=120))
    assert not np.array_equal(first, project(matrix, "umap", seed=2, fit_limit=120))
    # The 120 points left out of the fit are transformed: each should land nearest to
    # fitted points of its own group.
    fitted = np.sort(np.random.default_rng(1).choice(240, 120, replace=False))
    rest = np.setdiff1d(np.arange(240), fitted)
    groups = np.arange(240) % 3
    distances = np.linalg.norm(first[rest][:, None, :] - first[fitted][None, :, :], axis=2)
    nearest = fitted[distances.argmin(axis=1)]
    assert (groups[nearest] == groups[rest]).mean() > 0.95


def test_umap_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    with pytest.raises(VibesError, match=re.escape("vibes[umap]")):
        project(blobs(20, 2), "umap")


# -- the HTML page ---------------------------------------------------------------------------


def test_html_page_holds_every_point_and_nothing_from_the_network(make_collection, tmp_path):
    collection = make_collection(60)
    output = tmp_path / "map.html"
    result = plot_collection(collection, output)
    assert (result.points, result.total, result.reduced, result.format) == (60, 60, "all", "html")
    assert result.bytes == output.stat().st_size > 0
    page = output.read_text(encoding="utf-8")
    assert re.search(r"https?:|//cdn|<link|\bsrc\s*=|@import|url\(", page, re.I) is None
    data = page_data(output)
    assert sorted(data["id"]) == [f"item-{i:03d}" for i in range(60)]
    assert data["subtitle"].startswith("60 points")
    # Coordinates are PCA's, rescaled to 0..10000 with the aspect ratio kept.
    points = load_points(collection)
    reference = project(points)
    got = np.array([data["x"], data["y"]], dtype=float).T
    want = (reference - reference.min(axis=0)) / np.ptp(reference, axis=0).max() * 10_000
    order = [points.ids.index(item_id) for item_id in data["id"]]
    assert np.abs(got - want[order]).max() <= 1
    texts = dict(zip(data["id"], data["text"]))
    assert texts["item-007"] == "thing 7 of kind 1"
    # No far-out points: the first view is every point.
    assert result.outside == 0
    assert data["view"] == [0, 0, max(data["x"]), max(data["y"])]


def test_page_text_cannot_break_out_of_its_script_block(make_collection, tmp_path):
    long_text = "word " * 100
    texts = [NASTY] + [long_text] + [f"plain {i}" for i in range(2, 20)]
    collection = make_collection(20, texts=texts)
    output = tmp_path / "map.html"
    plot_collection(collection, output, title="<b>My</b> map & more")
    page = output.read_text(encoding="utf-8")
    # Exactly the page's own two script elements open and close; no comment opens.
    assert len(re.findall(r"<script", page, re.I)) == 2
    assert len(re.findall(r"</script", page, re.I)) == 2
    assert "<!--" not in page
    assert "<title>&lt;b&gt;My&lt;/b&gt; map &amp; more</title>" in page
    data = page_data(output)
    assert data["title"] == "<b>My</b> map & more"
    texts_by_id = dict(zip(data["id"], data["text"]))
    assert texts_by_id["item-000"] == NASTY
    cut = texts_by_id["item-001"]
    assert len(cut) == plot_module.TEXT_LIMIT and cut.endswith("…")
    assert long_text.startswith(cut[:-1])
    # The page shows texts through textContent, never as HTML.
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page


def test_script_json_escapes_what_could_end_a_script():
    text = script_json({"a": "</script><!--\u2028&"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--\u2028&"}


def test_large_collections_are_sampled_and_say_so(make_collection, tmp_path, monkeypatch):
    collection = make_collection(120)
    monkeypatch.setattr(plot_module, "HTML_LIMIT", 50)
    first = plot_collection(collection, tmp_path / "a.html", seed=3)
    assert (first.points, first.total, first.sampled) == (50, 120, True)
    assert first.reduced == "sampled 50 of 120"
    data = page_data(tmp_path / "a.html")
    assert len(data["id"]) == 50 and len(set(data["id"])) == 50
    assert data["subtitle"].startswith("sampled 50 of 120 points (seed 3)")
    # The same seed draws the same sample, byte for byte; another seed, another one.
    plot_collection(collection, tmp_path / "b.html", seed=3)
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    plot_collection(collection, tmp_path / "c.html", seed=4)
    assert set(page_data(tmp_path / "c.html")["id"]) != set(data["id"])
    # An explicit sample applies to PNG too; a PNG draws everything by default.
    assert plot_collection(collection, tmp_path / "d.png", sample=30).points == 30
    assert plot_collection(collection, tmp_path / "e.png").points == 120


def test_a_few_far_out_points_do_not_shrink_the_map(db_path, test_plugin, tmp_path):
    # Three tight groups close together, and two points on the far side of the sphere
    # (the collection compares by cosine, so only directions count).
    base = np.ones(DIMENSIONS, dtype=np.float32)
    matrix = base + 0.1 * blobs(300, 3)
    far = -base + 0.1 * blobs(2, 2, seed=1)
    collection = vibes.Database(db_path).collection("far", model="hash")
    collection.embed_multi(
        [{"id": f"p{i}", "vector": row} for i, row in enumerate(matrix)]
        + [{"id": f"far{i}", "vector": row} for i, row in enumerate(far)]
    )
    result = plot_collection(collection, tmp_path / "f.html")
    assert (result.points, result.outside) == (302, 2)
    data = page_data(tmp_path / "f.html")
    assert "2 far-out points beyond the frame" in data["subtitle"]
    x0, y0, x1, y1 = data["view"]
    position = {item_id: (x, y) for item_id, x, y in zip(data["id"], data["x"], data["y"])}
    inside = [x0 <= x <= x1 and y0 <= y <= y1 for x, y in position.values()]
    assert sum(inside) == 300
    for far_id in ("far0", "far1"):
        x, y = position[far_id]
        assert not (x0 <= x <= x1 and y0 <= y <= y1)
    assert plot_collection(collection, tmp_path / "f.png").outside == 2


# -- colours ---------------------------------------------------------------------------------


def entry_of(data: dict) -> dict[str, str]:
    """Each drawn id's legend entry name (None for a band of a colour scale)."""
    names = {}
    for item_id, layer in zip(data["id"], data["layer"]):
        entry = data["layerEntry"][layer]
        names[item_id] = data["legend"][entry]["name"] if entry >= 0 else None
    return names


def test_colour_by_a_metadata_category(make_collection, tmp_path):
    collection = make_collection(90, groups=3)
    result = plot_collection(collection, tmp_path / "m.html", color="metadata.kind")
    assert [(e.name, e.count) for e in result.legend] == [
        ("kind-0", 30),
        ("kind-1", 30),
        ("kind-2", 30),
    ]
    assert len({e.color for e in result.legend}) == 3
    data = page_data(tmp_path / "m.html")
    assert entry_of(data) == {f"item-{i:03d}": f"kind-{i % 3}" for i in range(90)}
    # A key only some items have: the others are counted as without it.
    odd = plot_collection(collection, tmp_path / "o.html", color="metadata.odd")
    assert [(e.name, e.count) for e in odd.legend] == [("true", 45), ("no odd", 45)]


def test_many_categories_keep_the_commonest_and_group_the_rest(make_collection, tmp_path):
    collection = make_collection(60, groups=30)  # 30 kinds of two items each
    collection.embed_multi(
        [
            {"id": f"extra-{i}", "vector": blobs(1, 1, seed=i)[0].tolist(), "metadata": {"kind": k}}
            for i, k in enumerate(["kind-29"] * 3 + ["kind-28"] * 2)
        ]
    )
    result = plot_collection(collection, tmp_path / "m.png", color="metadata.kind")
    names = [e.name for e in result.legend]
    assert len(names) == plot_module.MAX_CATEGORIES
    assert names[:2] == ["kind-29", "kind-28"]  # the commonest first
    assert result.legend[-1].name == "other (11 values)"
    assert result.legend[-1].count == 22
    assert sum(e.count for e in result.legend) == 65


def test_colour_by_a_number_uses_a_scale(make_collection, tmp_path):
    collection = make_collection(40)
    result = plot_collection(collection, tmp_path / "n.html", color="metadata.size")
    assert result.scale == (0.0, 39 * 1.5)
    assert result.legend == []  # every item has a size
    data = page_data(tmp_path / "n.html")
    assert data["scale"]["key"] == "size" and data["scale"]["max"] == 58.5
    values = dict(zip(data["id"], data["value"]))
    assert values == {f"item-{i:03d}": i * 1.5 for i in range(40)}
    # Larger numbers sit in later colour bands.
    bands = dict(zip(data["id"], data["layer"]))
    assert bands["item-000"] == 0 and bands["item-039"] == plot_module.SCALE_BANDS - 1
    assert bands["item-010"] < bands["item-020"] < bands["item-030"]


def test_colour_by_the_stored_clustering_names_the_clusters(make_collection, tmp_path):
    collection = make_collection(30, groups=2)
    store = collection.database.store
    assignments = {f"item-{i:03d}": i % 2 for i in range(30)}
    with store.transaction() as tx:
        store.save_clustering(
            tx,
            collection.id,
            "{}",
            [ClusterRecord(0, "Apples & <pears>", None, 15), ClusterRecord(1, None, None, 15)],
            assignments,
        )
    output = tmp_path / "c.html"
    result = plot_collection(collection, output, color="cluster")
    assert result.clusters == "stored"
    assert [e.name for e in result.legend] == ["Apples & <pears>", "cluster 1"]
    assert result.labels == ["Apples & <pears>", "cluster 1"]
    data = page_data(output)
    assert entry_of(data) == {
        item_id: ["Apples & <pears>", "cluster 1"][number]
        for item_id, number in assignments.items()
    }
    # Each name is written at its cluster's middle: inside the cluster's box.
    for label in data["labels"]:
        members = [i for i, layer in enumerate(data["layer"]) if layer == label["layer"]]
        xs = [data["x"][i] for i in members]
        ys = [data["y"][i] for i in members]
        assert min(xs) <= label["x"] <= max(xs) and min(ys) <= label["y"] <= max(ys)
    assert "Apples &amp;" not in output.read_text()  # JSON escapes, not HTML entities
    # Items added since the clustering are drawn grey, as unclustered.
    collection.embed_multi([{"id": f"new-{i}", "vector": blobs(1, 1, seed=i)[0]} for i in (1, 2)])
    later = plot_collection(collection, output, color="cluster")
    assert later.clusters == "stored"
    assert [(e.name, e.count) for e in later.legend][-1] == ("unclustered", 2)
    assert later.legend[-1].color == plot_module.GREY
    assert entry_of(page_data(output))["new-1"] == "unclustered"


def test_colour_by_clusters_made_now(make_collection, tmp_path):
    from vibes.analysis.cluster import cluster_collection

    collection = make_collection(60, groups=3)
    result = plot_collection(collection, tmp_path / "k.html", color="cluster", clusters=3)
    assert result.clusters == "computed"
    expected = cluster_collection(collection, 3, seed=0)
    names = {cluster.id: cluster.name for cluster in expected.clusters}
    data = page_data(tmp_path / "k.html")
    assert entry_of(data) == {i: names[n] for i, n in expected.assignments.items()}
    assert sorted(e.count for e in result.legend) == [20, 20, 20]
    assert collection.database.store.clustering(collection.id) is None  # nothing stored


def test_png_is_the_asked_size_with_the_legend_colours(make_collection, tmp_path):
    from PIL import Image

    collection = make_collection(90, groups=3)
    output = tmp_path / "m.png"
    result = plot_collection(
        collection, output, color="metadata.kind", width=640, height=480, title="Kinds"
    )
    assert result.format == "png" and png_size(output) == (640, 480)
    pixels = {tuple(p[:3]) for p in np.asarray(Image.open(output).convert("RGB")).reshape(-1, 3)}
    for colour in PALETTE[:3]:
        assert tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5)) in pixels
    plot_collection(collection, tmp_path / "d.png")
    assert png_size(tmp_path / "d.png") == (1200, 900)
    plot_collection(collection, tmp_path / "s.png", color="metadata.size")
    assert png_size(tmp_path / "s.png") == (1200, 900)


def test_documents_are_one_point_each(db_path, test_plugin, tmp_path):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    guide = "apples and pears\nbananas and plums\ncherries and figs"
    collection.embed_multi(
        [{"id": "guide.md", "content": guide, "metadata": {"kind": "guide"}}],
        chunk="lines",
        store=True,
    )
    collection.embed_multi(
        [{"id": "note", "content": "hammers and nails", "metadata": {"kind": "note"}}],
        store=True,
    )
    output = tmp_path / "d.html"
    items = plot_collection(collection, tmp_path / "i.html")
    assert items.points == 4
    result = plot_collection(collection, output, documents=True, color="metadata.kind")
    assert (result.points, result.documents) == (2, True)
    data = page_data(output)
    assert sorted(data["id"]) == ["guide.md", "note"]
    assert entry_of(data) == {"guide.md": "guide", "note": "note"}
    assert dict(zip(data["id"], data["text"]))["guide.md"] == guide.replace("\n", " ")


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("map.pdf", {}, "ending in .html or .png"),
        ("map.html", {"color": "size"}, "Cannot colour by 'size'"),
        ("map.html", {"color": "metadata."}, "Cannot colour by"),
        ("map.html", {"color": "metadata.nope"}, "metadata key 'nope'"),
        ("map.html", {"clusters": 3}, "colouring by cluster only"),
        ("map.html", {"width": 300}, "PNG images only"),
        ("map.png", {"width": 5}, "100 to 10000 pixels"),
        ("map.html", {"sample": 0}, "sample size must be 1 or more"),
        ("map.html", {"method": "tsne"}, "Unknown projection"),
        ("no/such/dir/map.html", {}, "no directory"),
        ("map.html", {"color": "cluster", "clusters": 500}, "Cannot make 500 clusters"),
    ],
)
def test_api_errors_leave_an_earlier_map_alone(make_collection, tmp_path, name, options, fragment):
    collection = make_collection(20)
    output = tmp_path / name
    if output.parent.is_dir():
        output.write_text("earlier map")
    with pytest.raises(VibesError, match=re.escape(fragment)):
        plot_collection(collection, output, **options)
    if output.parent.is_dir():
        assert output.read_text() == "earlier map"
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_cli_writes_a_page_and_prints_one_json_line(make_collection, invoke, db_path, tmp_path):
    make_collection(40)
    output = tmp_path / "map.html"
    result = invoke(["plot", "things", "-o", output, "-d", db_path, "--color", "metadata.kind"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["path"] == str(output) and row["points"] == row["total"] == 40
    assert (row["method"], row["sampled"], row["format"]) == ("pca", False, "html")
    assert [e["name"] for e in row["legend"]] == ["kind-0", "kind-1", "kind-2"]
    assert len(page_data(output)["id"]) == 40
    png = tmp_path / "map.png"
    result = invoke(
        ["plot", "things", "-o", png, "-d", db_path, "--sample", "10", "--width", "300",
         "--height", "200", "--seed", "5", "--title", "Small"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["points"], row["total"], row["reduced"]) == (10, 40, "sampled 10 of 40")
    assert png_size(png) == (300, 200)


def test_cli_errors_are_one_line(make_collection, invoke, db_path, tmp_path):
    make_collection(10)
    vibes.Database(db_path).collection("empty", model="hash")
    base = ["-d", db_path]
    usage_error(invoke(["plot", "things", *base]), "Missing option '-o' / '--output'")
    one_line_error(invoke(["plot", "things", "-o", tmp_path / "m.svg", *base]), ".html or .png")
    one_line_error(invoke(["plot", "nope", "-o", tmp_path / "m.html", *base]), "nope")
    one_line_error(invoke(["plot", "empty", "-o", tmp_path / "m.html", *base]), "empty")
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(invoke(["plot", "things", "-o", blocker / "m.html", *base]), "Cannot write")
    usage_error(invoke(["plot", "things", "-o", tmp_path, *base]), "is a directory")
    one_line_error(
        invoke(["plot", "things", "-o", tmp_path / "m.html", "--color", "x", *base]),
        "cluster or metadata.KEY",
    )
    usage_error(
        invoke(["plot", "things", "-o", tmp_path / "m.html", "--method", "tsne", *base]),
        "'tsne' is not one of 'pca', 'umap'",
    )
    usage_error(invoke(["plot", "things", "-o", tmp_path / "m.png", "--width", "5", *base]), "5")


def usage_error(result, fragment: str) -> None:
    """A usage error: exit status 2, click's usage lines, then one line naming it."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:") and fragment in last, last


def test_plot_as_a_real_process(make_collection, run, db_path, tmp_path):
    make_collection(30)
    output = tmp_path / "map.html"
    done = run(["plot", "things", "-o", output, "-d", db_path, "--color", "cluster"])
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert (row["clusters"], row["points"]) == ("computed", 30)
    assert len(row["legend"]) == 8 and len(row["labels"]) == 8
    names = {entry["name"] for entry in page_data(output)["legend"]}
    assert names == {entry["name"] for entry in row["legend"]}


# -- the page in a browser -------------------------------------------------------------------

# Injected before the page's own script: records errors, then, once the page has drawn,
# drives it (hover a point, hide a group) and writes what it saw into the DOM, which
# `chromium --dump-dom` prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
window.addEventListener("load", function () {
  var out = {errors: window.__errors};
  try {
    var plot = window.vibesPlot, data = JSON.parse(
      document.getElementById("plot-data").textContent);
    var canvas = document.getElementById("map");
    var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    var coloured = 0;
    for (var i = 0; i < pixels.length; i += 4) if (pixels[i + 3] > 0) coloured++;
    out.points = plot.points;
    out.coloured = coloured;
    out.legendRows = document.querySelectorAll("#legend .entry").length;
    out.title = document.getElementById("title").textContent;
    out.scripts = document.scripts.length;
    // Hover the first point where the page draws it: the tip shows its id and text.
    var box = canvas.getBoundingClientRect();
    var view = plot.screen(0), plot0 = plot.screen(1);
    canvas.dispatchEvent(new PointerEvent("pointermove",
      {clientX: box.left + view[0], clientY: box.top + view[1], bubbles: true}));
    out.tipId = document.querySelector("#tip .id").textContent;
    out.tipText = document.querySelector("#tip .text").textContent;
    out.tipShown = document.getElementById("tip").style.display;
    out.firstId = data.id[0];
    out.firstText = data.text[0];
    // Drag by (40, 30): the point moves with the mouse; a wheel turn zooms in on it.
    function send(type, x, y) {
      canvas.dispatchEvent(new PointerEvent(type, {clientX: box.left + x,
        clientY: box.top + y, button: 0, bubbles: true}));
    }
    send("pointerdown", 300, 300);
    send("pointermove", 340, 330);
    send("pointerup", 340, 330);
    var moved = plot.screen(0);
    out.dragged = [moved[0] - view[0], moved[1] - view[1]];
    canvas.dispatchEvent(new WheelEvent("wheel", {clientX: box.left + moved[0],
      clientY: box.top + moved[1], deltaY: -500, bubbles: true, cancelable: true}));
    var zoomed = plot.screen(0), other = plot.screen(1);
    out.zoomFixed = [zoomed[0] - moved[0], zoomed[1] - moved[1]];
    out.spread = [Math.hypot(view[0] - plot0[0], view[1] - plot0[1]),
      Math.hypot(zoomed[0] - other[0], zoomed[1] - other[1])];
    document.getElementById("zoom-reset").click();
    view = plot.screen(0);
    // Hide the first point's group: hovering it finds nothing.
    document.querySelectorAll("#legend .entry")[data.layerEntry[data.layer[0]]].click();
    out.afterHide = plot.nearest(view[0], view[1]);
  } catch (error) { out.errors.push(String(error)); }
  var node = document.createElement("pre");
  node.id = "probe";
  node.textContent = JSON.stringify(out);
  document.body.appendChild(node);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the browser test needs Chromium: apt-get install chromium"
    return found


@pytest.mark.slow
def test_the_page_runs_in_a_browser(make_collection, tmp_path):
    texts = [NASTY] + [f"thing {i}" for i in range(1, 200)]
    collection = make_collection(200, groups=4, texts=texts)
    output = tmp_path / "map.html"
    plot_collection(collection, output, color="metadata.kind", title="<b>Browser</b>")
    page = output.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1)
    probed = tmp_path / "probed.html"
    probed.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,700",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    import html

    out = json.loads(html.unescape(found.group(1)))
    assert out["errors"] == []
    assert out["points"] == 200
    assert out["coloured"] > 200  # points were drawn
    assert out["legendRows"] == 4
    assert out["title"] == "<b>Browser</b>"
    assert out["scripts"] == 3  # the probe and the page's two: the text opened none
    assert out["tipShown"] == "block"
    assert (out["tipId"], out["tipText"]) == (out["firstId"], out["firstText"])
    assert out["firstText"] == NASTY
    assert out["afterHide"] == -1
    assert out["dragged"] == [40, 30]
    # Zooms about the mouse (within the rounding of event coordinates to pixels).
    assert max(abs(d) for d in out["zoomFixed"]) < 3
    assert out["spread"][1] > 2 * out["spread"][0]  # points drawn further apart


def test_legend_counts_match_the_metadata(make_collection, tmp_path):
    collection = make_collection(50, groups=4)
    result = plot_collection(collection, tmp_path / "m.html", color="metadata.kind")
    want = Counter(f"kind-{i % 4}" for i in range(50))
    assert {e.name: e.count for e in result.legend} == dict(want)

"""A map of a collection: its points projected to 2D (:mod:`.project`), coloured by cluster
or by a metadata key, written as one self-contained interactive HTML page or as a PNG.

The HTML page carries its data as JSON and draws it on a canvas with its own inline script
(:mod:`.plot_page`): no CDN, no network, so it opens offline and can be mailed around.
Above :data:`HTML_LIMIT` points it draws a seeded random sample (and says so on the page
and in the result), which keeps panning and hovering smooth and the file a few MB; a PNG
draws every point unless asked to sample.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VibesError
from .points import document_of, load_points, load_texts
from .project import METHODS, project

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = [
    "DEFAULT_CLUSTERS",
    "HTML_LIMIT",
    "LegendEntry",
    "PlotResult",
    "plot_collection",
]

#: The most points an HTML page draws before it samples (measured in Chromium: 100,000
#: points redraw in about 20 ms, hover answers at once, and the page stays near 10 MB).
HTML_LIMIT = 100_000
#: Clusters made for ``color="cluster"`` when none are stored and no number is given.
DEFAULT_CLUSTERS = 8
#: Hover text is cut to this many characters (the page stays small; the id finds the rest).
TEXT_LIMIT = 200
#: Distinct metadata values coloured one by one; past it, the rarest share "other".
MAX_CATEGORIES = 20
#: Page coordinates are whole numbers from 0 to this (small JSON, ample precision).
GRID = 10_000
#: Maps of fewer points always show every point; larger ones may frame the central 99%
#: (see :func:`_frame`) when that box is under this share of the whole extent.
FRAME_MIN_POINTS = 200
FRAME_SHARE = 0.7
#: Default PNG size in pixels.
PNG_WIDTH, PNG_HEIGHT = 1200, 900

# Tableau's 20 colours, the strong ten first, so that up to ten groups stay far apart.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
#: The colour of points in no group: unclustered, without the key, or "other".
GREY = "#b4b4b4"
ONE_COLOUR = "#3b6fb6"
#: Viridis at nine stops, for numbers (the page interpolates between them).
SCALE = [
    "#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
    "#28ae80", "#5ec962", "#addc30", "#fde725",
]  # fmt: skip
#: A continuous scale is drawn as this many colour bands (one canvas batch each).
SCALE_BANDS = 32


@dataclass(frozen=True)
class LegendEntry:
    """One colour of a map: what it stands for, and how many drawn points have it."""

    name: str
    color: str
    count: int


@dataclass
class PlotResult:
    """What :func:`plot_collection` wrote."""

    path: Path
    format: str  # "html" or "png"
    method: str  # "pca" or "umap"
    points: int  # drawn
    total: int  # in the collection (documents and items, with ``documents``)
    reduced: str  # "all", or "sampled N of M"
    seed: int
    color: str | None = None
    #: Where cluster colours came from: "stored" (``vibes cluster --store``) or "computed".
    clusters: str | None = None
    legend: list[LegendEntry] = field(default_factory=list)
    #: For numbers coloured on a scale: the key's smallest and largest drawn value.
    scale: tuple[float, float] | None = None
    #: The cluster names written on the map.
    labels: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    documents: bool = False
    #: Far-out points left beyond the first view (the page's, when zoomed out) or the
    #: image's frame, so that a few outliers do not shrink the map to a dot.
    outside: int = 0

    @property
    def sampled(self) -> bool:
        return self.points < self.total

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (what ``vibes plot`` prints)."""
        result = asdict(self)
        result["path"] = str(self.path)
        result["sampled"] = self.sampled
        result["seconds"] = round(self.seconds, 3)
        if self.scale is None:
            del result["scale"]
        else:
            result["scale"] = list(self.scale)
        return result


@dataclass
class _Colours:
    """Each drawn point's colour layer, the layers' colours, and the legend."""

    layers: list[str]
    point_layer: np.ndarray
    legend: list[LegendEntry]
    #: The legend entry of each layer (-1: a band of the scale), for toggling on the page.
    layer_entry: list[int]
    scale: tuple[float, float] | None = None
    scale_key: str | None = None
    #: With a scale: each drawn point's number (None: it has none), shown on hover.
    values: list[float | None] | None = None
    labels: list[tuple[str, int]] = field(default_factory=list)  # (name, layer)
    clusters: str | None = None


def plot_collection(
    collection: Collection,
    output: str | Path,
    *,
    method: str = "pca",
    color: str | None = None,
    clusters: int | None = None,
    documents: bool = False,
    sample: int | None = None,
    seed: int = 0,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> PlotResult:
    """Draw ``collection`` in 2D into ``output``: an interactive page (``.html``) or an
    image (``.png``), chosen by the suffix.

    - ``method``: ``"pca"`` or ``"umap"`` (umap-learn; see :func:`.project.project`).
    - ``color``: ``"cluster"`` (the stored clustering, else ``clusters`` k-means clusters,
      default :data:`DEFAULT_CLUSTERS`, named by their words), ``"metadata.KEY"``
      (categories, or a colour scale when the values are numbers), or None (one colour).
    - ``documents``: a chunked document is one point (the mean of its chunks).
    - ``sample``: draw a seeded random sample of this many points (HTML pages sample
      above :data:`HTML_LIMIT` by themselves).
    - ``width``/``height``: the PNG's size in pixels (default 1200 × 900).
    """
    started = time.perf_counter()
    path = Path(output)
    kind = _format_of(path)
    _check_options(kind, method, color, clusters, sample, seed, width, height)
    _check_writable(path)
    if not collection.exists:
        raise VibesError(f"Collection {collection.name!r} does not exist")
    import numpy as np

    points = load_points(collection, documents=documents)
    total = len(points)
    if total == 0:
        raise VibesError(f"Collection {collection.name!r} is empty: there is nothing to plot")
    limit = sample if sample is not None else (HTML_LIMIT if kind == "html" else None)
    if limit is not None and total > limit:
        rows = np.sort(np.random.default_rng(seed).choice(total, limit, replace=False))
    else:
        rows = np.arange(total)
    ids = [points.ids[i] for i in rows]
    # Colours first: a missing key or a bad number of clusters fails before the projection.
    if color == "cluster":
        colours = _cluster_colours(collection, ids, clusters, seed, documents, total)
    elif color is not None:
        key = color.split(".", 1)[1]
        colours = _metadata_colours(_metadata(collection, ids, documents), key)
    else:
        colours = _Colours([ONE_COLOUR], np.zeros(len(ids), dtype=np.int32), [], [-1])
    vectors = points.vectors if len(rows) == total else points.vectors[rows]
    del points
    coordinates = project(vectors, method, seed)
    del vectors
    reduced = "all" if len(ids) == total else f"sampled {len(ids):,} of {total:,}"
    frame = _frame(coordinates)
    result = PlotResult(
        path,
        kind,
        method,
        len(ids),
        total,
        reduced,
        seed,
        color,
        colours.clusters,
        colours.legend,
        colours.scale,
        [name for name, _ in colours.labels],
        documents=documents,
        outside=frame[2],
    )
    heading = title if title is not None else collection.name
    subtitle = _subtitle(result)
    if kind == "html":
        texts = load_texts(collection, ids, documents=documents)
        data = _page_data(heading, subtitle, ids, texts, coordinates, colours, frame)
        from .plot_page import render_page

        _write(path, render_page(heading, data).encode("utf-8"))
    else:
        _write(
            path,
            _png(
                coordinates,
                colours,
                heading,
                subtitle,
                width or PNG_WIDTH,
                height or PNG_HEIGHT,
                method,
                frame,
            ),
        )
    result.bytes = path.stat().st_size
    result.seconds = time.perf_counter() - started
    return result


# -- checks ----------------------------------------------------------------------------------


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".png":
        return "png"
    raise VibesError(
        f"Cannot tell what to write to {str(path)!r}: give a file name ending in .html or .png"
    )


def _check_options(
    kind: str,
    method: str,
    color: str | None,
    clusters: int | None,
    sample: int | None,
    seed: int,
    width: int | None,
    height: int | None,
) -> None:
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if method not in METHODS:
        raise VibesError(f"Unknown projection {method!r}: use pca or umap")
    if color is not None and color != "cluster":
        if not color.startswith("metadata.") or len(color) == len("metadata."):
            raise VibesError(f"Cannot colour by {color!r}: use cluster or metadata.KEY")
    if clusters is not None:
        if color != "cluster":
            raise VibesError("A number of clusters applies to colouring by cluster only")
        if not whole(clusters) or clusters < 1:
            raise VibesError(f"The number of clusters must be 1 or more, not {clusters!r}")
    if sample is not None and (not whole(sample) or sample < 1):
        raise VibesError(f"The sample size must be 1 or more, not {sample!r}")
    if not whole(seed) or not 0 <= seed < 2**32:
        raise VibesError(f"The seed must be a whole number from 0 to 2**32 - 1, not {seed!r}")
    for name, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if kind != "png":
            raise VibesError(f"The {name} in pixels applies to PNG images only")
        if not whole(value) or not 100 <= value <= 10_000:
            raise VibesError(f"The {name} must be 100 to 10000 pixels, not {value!r}")


def _check_writable(path: Path) -> None:
    """Fail before the work, not after it, when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise VibesError(f"Cannot write {str(path)!r}: it is a directory")
    if not parent.is_dir():
        raise VibesError(f"Cannot write {str(path)!r}: no directory {str(parent)!r}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise VibesError(f"Cannot write {str(path)!r}: permission denied")


def _write(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` whole or not at all: an earlier map stays until the
    new one is complete."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        raise VibesError(f"Cannot write {str(path)!r}: {error.strerror or error}") from None


# -- colours ---------------------------------------------------------------------------------


def _cluster_colours(
    collection: Collection,
    ids: list[str],
    clusters: int | None,
    seed: int,
    documents: bool,
    total: int,
) -> _Colours:
    """Colours by cluster: the stored clustering when it covers most of the points and no
    number of clusters was asked for, else a k-means clustering made now."""
    import numpy as np

    store = collection.database.store
    assignments: dict[str, int] = {}
    names: dict[int, str] = {}
    source = "computed"
    if clusters is None:
        stored = store.clustering(collection.id)
        if stored is not None:
            found = store.cluster_assignments(collection.id)
            if sum(1 for item_id in ids if item_id in found) * 2 >= len(ids):
                assignments, source = found, "stored"
                names = {
                    record.cluster: record.name or f"cluster {record.cluster}"
                    for record in stored.clusters
                }
    if source == "computed":
        from .cluster import cluster_collection

        result = cluster_collection(
            collection,
            clusters if clusters is not None else min(DEFAULT_CLUSTERS, total),
            seed=seed,
            documents=documents,
        )
        assignments = result.assignments
        names = {cluster.id: cluster.name for cluster in result.clusters}
    numbers = sorted({number for number in assignments.values() if number >= 0} | set(names))
    layer_of = {number: layer for layer, number in enumerate(numbers)}
    unclustered = len(numbers)
    point_layer = np.fromiter(
        (layer_of.get(assignments.get(item_id, -1), unclustered) for item_id in ids),
        dtype=np.int32,
        count=len(ids),
    )
    counts = np.bincount(point_layer, minlength=len(numbers) + 1)
    layers = [PALETTE[layer % len(PALETTE)] for layer in range(len(numbers))]
    legend = [
        LegendEntry(names.get(number, f"cluster {number}"), layers[layer], int(counts[layer]))
        for layer, number in enumerate(numbers)
    ]
    labels = [(entry.name, layer) for layer, entry in enumerate(legend) if entry.count]
    if counts[unclustered]:
        layers.append(GREY)
        legend.append(LegendEntry("unclustered", GREY, int(counts[unclustered])))
    # Clusters with no drawn point (all left out of the sample) stay out of the legend.
    keep = [i for i, entry in enumerate(legend) if entry.count]
    renumber = np.full(len(legend), -1, dtype=np.int32)
    renumber[keep] = np.arange(len(keep), dtype=np.int32)
    return _Colours(
        [layers[i] for i in keep],
        renumber[point_layer],
        [legend[i] for i in keep],
        list(range(len(keep))),
        labels=[(name, int(renumber[layer])) for name, layer in labels],
        clusters=source,
    )


def _metadata(
    collection: Collection, ids: list[str], documents: bool
) -> list[dict[str, Any] | None]:
    """Each point's metadata; a chunked document's is its chunks' (they share it)."""
    store = collection.database.store
    found = {
        item_id: item.metadata for item_id, item in store.get_items(collection.id, ids).items()
    }
    missing = {item_id for item_id in ids if item_id not in found}
    if documents and missing:
        chunk_of: dict[str, str] = {}
        for chunk, document in document_of(collection).items():
            if document in missing:
                chunk_of.setdefault(document, chunk)
        chunks = store.get_items(collection.id, list(chunk_of.values()))
        for document, chunk in chunk_of.items():
            if chunk in chunks:
                found[document] = chunks[chunk].metadata
    return [found.get(item_id) for item_id in ids]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metadata_colours(metadata: list[dict[str, Any] | None], key: str) -> _Colours:
    """Colours by the value of metadata ``key``: a scale for numbers, else categories."""
    import numpy as np

    values = [m.get(key) if isinstance(m, dict) else None for m in metadata]
    present = [value for value in values if value is not None]
    if not present:
        raise VibesError(
            f"No item among the {len(values):,} drawn has metadata key {key!r} to colour by"
        )
    missing = len(values) - len(present)
    if all(_number(value) for value in present):
        numbers = np.array([np.nan if v is None else float(v) for v in values])
        low, high = float(np.nanmin(numbers)), float(np.nanmax(numbers))
        if not np.isfinite([low, high]).all():
            raise VibesError(f"Metadata key {key!r} holds values too large to colour by")
        position = (numbers - low) / (high - low) if high > low else np.full(len(values), 0.5)
        bands = np.clip((position * SCALE_BANDS).astype(np.int64), 0, SCALE_BANDS - 1)
        point_layer = np.where(np.isnan(numbers), SCALE_BANDS, bands).astype(np.int32)
        layers = [_scale_colour((band + 0.5) / SCALE_BANDS) for band in range(SCALE_BANDS)]
        legend = []
        if missing:
            legend.append(LegendEntry(f"no {key}", GREY, missing))
        return _Colours(
            [*layers, GREY],
            point_layer,
            legend,
            [-1] * SCALE_BANDS + [0 if missing else -1],
            scale=(low, high),
            scale_key=key,
            values=[None if v is None else float(v) for v in values],
        )
    names = [None if v is None else (v if isinstance(v, str) else _json(v)) for v in values]
    counts = Counter(name for name in names if name is not None)
    ranked = sorted(counts, key=lambda name: (-counts[name], name))
    shown = ranked if len(ranked) <= MAX_CATEGORIES else ranked[: MAX_CATEGORIES - 1]
    layer_of = {name: layer for layer, name in enumerate(shown)}
    legend = [LegendEntry(name, PALETTE[layer], counts[name]) for layer, name in enumerate(shown)]
    layers = [entry.color for entry in legend]
    other = len(ranked) - len(shown)
    rest = len(present) - sum(entry.count for entry in legend)
    if other:
        legend.append(LegendEntry(f"other ({other:,} values)", GREY, rest))
        layers.append(GREY)
    if missing:
        legend.append(LegendEntry(f"no {key}", "#dddddd", missing))
        layers.append("#dddddd")
    other_layer = len(shown)
    missing_layer = len(layers) - 1
    point_layer = np.fromiter(
        (missing_layer if name is None else layer_of.get(name, other_layer) for name in names),
        dtype=np.int32,
        count=len(names),
    )
    return _Colours(layers, point_layer, legend, list(range(len(layers))))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _scale_colour(position: float) -> str:
    """The colour of the scale at ``position`` (0 to 1), between its stops."""
    spot = min(max(position, 0.0), 1.0) * (len(SCALE) - 1)
    low = min(int(spot), len(SCALE) - 2)
    fraction = spot - low
    a, b = _rgb(SCALE[low]), _rgb(SCALE[low + 1])
    return "#" + "".join(f"{round(x + (y - x) * fraction):02x}" for x, y in zip(a, b))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


# -- output ----------------------------------------------------------------------------------


def _subtitle(result: PlotResult) -> str:
    what = "documents and items" if result.documents else "points"
    if result.sampled:
        drawn = f"sampled {result.points:,} of {result.total:,} {what} (seed {result.seed})"
    else:
        drawn = f"{result.points:,} {what}"
    parts = [drawn, result.method.upper()]
    if result.color == "cluster":
        parts.append(f"coloured by cluster ({result.clusters})")
    elif result.color:
        parts.append(f"coloured by {result.color}")
    if result.outside:
        parts.append(f"{result.outside:,} far-out points beyond the frame")
    return " · ".join(parts)


def _frame(coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The box a map shows first: every point, unless a few far-out ones (UMAP throws
    small disconnected groups far away) would shrink the rest to a corner; then the box
    of the central 99% of the points with a margin. Also how many points lie outside."""
    import numpy as np

    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    if len(coordinates) < FRAME_MIN_POINTS:
        return low, high, 0
    inner_low, inner_high = np.percentile(coordinates, [0.5, 99.5], axis=0)
    margin = (inner_high - inner_low) * 0.1
    box_low = np.maximum(inner_low - margin, low)
    box_high = np.minimum(inner_high + margin, high)
    if ((box_high - box_low) >= FRAME_SHARE * np.maximum(high - low, 1e-12)).all():
        return low, high, 0
    outside = ((coordinates < box_low) | (coordinates > box_high)).any(axis=1)
    return box_low, box_high, int(outside.sum())


def _grid(coordinates: np.ndarray) -> np.ndarray:
    """Coordinates as whole numbers from 0 to :data:`GRID`, keeping the aspect ratio."""
    import numpy as np

    low = coordinates.min(axis=0)
    span = float((coordinates.max(axis=0) - low).max()) or 1.0
    return np.rint((coordinates - low) * (GRID / span)).astype(np.int32)


def _page_data(
    title: str,
    subtitle: str,
    ids: list[str],
    texts: dict[str, str | None],
    coordinates: np.ndarray,
    colours: _Colours,
    frame: tuple[np.ndarray, np.ndarray, int],
) -> dict[str, Any]:
    """What the page's script reads: columns of the points, then the legend and labels."""
    import numpy as np

    grid = _grid(coordinates)
    # The first view, in the page's coordinates.
    low, span = coordinates.min(axis=0), float(np.ptp(coordinates, axis=0).max()) or 1.0
    view = [round(float(v)) for v in ((np.concatenate(frame[:2]) - np.tile(low, 2)) * GRID / span)]
    labels = []
    for name, layer in colours.labels:
        members = grid[colours.point_layer == layer]
        if len(members):
            x, y = np.median(members, axis=0)
            labels.append(
                {"text": name, "layer": layer, "x": round(float(x)), "y": round(float(y))}
            )
    data: dict[str, Any] = {
        "title": title,
        "subtitle": subtitle,
        "x": grid[:, 0].tolist(),
        "y": grid[:, 1].tolist(),
        "id": ids,
        "text": [_cut(texts.get(item_id)) for item_id in ids],
        "layer": colours.point_layer.tolist(),
        "layers": colours.layers,
        "legend": [asdict(entry) for entry in colours.legend],
        "layerEntry": colours.layer_entry,
        "labels": labels,
        "view": view,
        "scale": None,
    }
    if colours.scale is not None:
        data["scale"] = {
            "key": colours.scale_key,
            "min": colours.scale[0],
            "max": colours.scale[1],
            "stops": SCALE,
        }
        data["value"] = colours.values
    return data


def _cut(text: str | None) -> str:
    if text is None:
        return ""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1].rstrip() + "…"


def _png(
    coordinates: np.ndarray,
    colours: _Colours,
    title: str,
    subtitle: str,
    width: int,
    height: int,
    method: str,
    frame: tuple[np.ndarray, np.ndarray, int],
) -> bytes:
    """The map as PNG bytes, drawn by matplotlib's Agg renderer (never a window)."""
    import io

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LinearSegmentedColormap, Normalize, to_rgba_array
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patheffects import withStroke

    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    side = colours.legend or colours.scale is not None
    axes = figure.add_axes((0.02, 0.03, 0.74 if side else 0.96, 0.86))
    n = len(coordinates)
    # Smaller, fainter dots as the points grow many, so that density still shows.
    size = float(np.clip(20_000 / max(n, 1), 1.5, 30))
    alpha = float(np.clip(1.0 - 0.13 * np.log10(max(n, 1)), 0.3, 0.9))
    rgba = to_rgba_array(colours.layers)[colours.point_layer]
    rgba[:, 3] = alpha
    # One scatter in a shuffled order: no group is painted wholesale over another.
    order = np.random.default_rng(0).permutation(n)
    axes.scatter(coordinates[order, 0], coordinates[order, 1], s=size, c=rgba[order], linewidths=0)
    (x0, y0), (x1, y1) = frame[0], frame[1]
    pad_x, pad_y = (x1 - x0) * 0.02 or 1.0, (y1 - y0) * 0.02 or 1.0
    axes.set_xlim(x0 - pad_x, x1 + pad_x)
    axes.set_ylim(y0 - pad_y, y1 + pad_y)
    axes.set_aspect("equal", adjustable="box")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(f"{method.upper()} 1", fontsize=8, color="#666")
    axes.set_ylabel(f"{method.upper()} 2", fontsize=8, color="#666")
    for spine in axes.spines.values():
        spine.set_color("#ccc")
    figure.text(0.02, 0.965, title, fontsize=14, weight="bold", va="center")
    figure.text(0.02, 0.925, subtitle, fontsize=9, color="#555", va="center")
    halo = [withStroke(linewidth=3, foreground="white")]
    for name, layer in colours.labels:
        members = coordinates[colours.point_layer == layer]
        if len(members):
            x, y = np.median(members, axis=0)
            axes.text(
                x, y, name, fontsize=9, weight="bold", ha="center", va="center", path_effects=halo
            )
    if colours.scale is not None:
        scale_axes = figure.add_axes((0.80, 0.25, 0.025, 0.6))
        palette = LinearSegmentedColormap.from_list("scale", SCALE)
        figure.colorbar(
            _mappable(palette, Normalize(*colours.scale)), cax=scale_axes, label=colours.scale_key
        )
    if colours.legend:
        handles = [
            Line2D([], [], marker="o", linestyle="", color=entry.color, markersize=7)
            for entry in colours.legend
        ]
        names = [f"{_short(entry.name, 28)} ({entry.count:,})" for entry in colours.legend]
        figure.legend(
            handles,
            names,
            loc="upper left",
            bbox_to_anchor=(0.77, 0.2 if colours.scale is not None else 0.89),
            fontsize=max(5.0, min(8.0, width / 150)),
            frameon=False,
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _mappable(palette: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=palette)


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"

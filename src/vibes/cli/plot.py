"""``vibes plot``: a 2D map of a collection, as an interactive HTML page or a PNG."""

from __future__ import annotations

import click

from . import cli
from .options import database_option, emit_json_lines, open_database


@cli.command()
@click.argument("collection")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=False),
    help="File to write: .html (an interactive page) or .png (an image)  [required]",
)
@click.option(
    "--method",
    type=click.Choice(["pca", "umap"]),
    default="pca",
    show_default=True,
    help="Projection to 2D (umap needs the vibes[umap] extra)",
)
@click.option(
    "--color",
    "--colour",
    "color",
    metavar="cluster|metadata.KEY",
    help="Colour the points by cluster (the stored clustering, else k-means) or by a "
    "metadata key (categories, or a scale for numbers)",
)
@click.option(
    "--clusters",
    type=click.IntRange(min=1),
    help="With --color cluster: make this many clusters now (default: the stored "
    "clustering, else 8)",
)
@click.option("--documents", is_flag=True, help="A chunked document is one point")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    help="Draw a random sample of this many points (HTML samples above 100,000 by itself)",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the sample, the clusters and UMAP")  # fmt: skip
@click.option("--title", help="Title of the map (default: the collection's name)")
@click.option(
    "--width", type=click.IntRange(100, 10_000), help="PNG width in pixels (default 1200)"
)
@click.option(
    "--height", type=click.IntRange(100, 10_000), help="PNG height in pixels (default 900)"
)
@database_option
def plot(
    collection: str,
    output: str | None,
    method: str,
    color: str | None,
    clusters: int | None,
    documents: bool,
    sample: int | None,
    seed: int,
    title: str | None,
    width: int | None,
    height: int | None,
    database: str | None,
) -> None:
    """Draw COLLECTION as a 2D map: an interactive page (pan, zoom, hover for each item's
    text) or an image. Prints one JSON line saying what it wrote.

    \b
    Examples:
      vibes plot docs -o map.html
      vibes plot docs -o map.html --color cluster --clusters 12
      vibes plot docs -o map.png --color metadata.year --method umap
    """
    if not output:
        raise click.UsageError("Missing option '-o' / '--output': the .html or .png to write")
    from ..analysis.plot import plot_collection

    target = open_database(database).collection(collection, create=False)
    result = plot_collection(
        target,
        output,
        method=method,
        color=color,
        clusters=clusters,
        documents=documents,
        sample=sample,
        seed=seed,
        title=title,
        width=width,
        height=height,
    )
    emit_json_lines([result.to_dict()])

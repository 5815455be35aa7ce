"""``vibes cluster``: a collection's items in clusters, each with a name (and an LLM's
summary on request), as llm-cluster prints them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from . import cli
from .options import database_option, open_database, stderr_is_terminal

if TYPE_CHECKING:
    from ..analysis.cluster import Cluster, ClusterResult


@cli.command()
@click.argument("collection")
@click.argument("n", type=int, required=False)
@click.option(
    "--algorithm",
    type=click.Choice(["kmeans", "hdbscan"]),
    default="kmeans",
    show_default=True,
    help="kmeans makes N clusters; hdbscan finds how many itself (no N) and leaves "
    "outliers unclustered",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for k-means")
@click.option(
    "--min-cluster-size",
    type=int,
    help="hdbscan: the smallest cluster (default: 5, growing with the square root of the "
    "collection's size)",
)
@click.option("--summary", is_flag=True, help="Have an LLM write a summary title for each cluster")
@click.option("-m", "--model", "llm_name", help="LLM for --summary (default: the default LLM)")
@click.option("--prompt", help="Instructions for --summary, in place of the default ones")
@click.option(
    "--truncate",
    type=int,
    default=100,
    show_default=True,
    help="Cut each item's content to this many characters; 0 for no truncation",
)
@click.option("--nl", is_flag=True, help="One JSON object per cluster per line, not a JSON array")
@click.option(
    "--store", is_flag=True, help="Save each item's cluster and the names in the database"
)
@click.option(
    "--documents", is_flag=True, help="Cluster chunked documents as wholes, not their chunks"
)
@click.option("--no-names", is_flag=True, help="Skip naming clusters by their distinctive words")
@database_option
def cluster(
    collection: str,
    n: int | None,
    algorithm: str,
    seed: int,
    min_cluster_size: int | None,
    summary: bool,
    llm_name: str | None,
    prompt: str | None,
    truncate: int,
    nl: bool,
    store: bool,
    documents: bool,
    no_names: bool,
    database: str | None,
) -> None:
    """Group a collection's items into clusters of related items.

    Prints a JSON array of {"id", "name", "size", "summary", "items": [{"id",
    "content"}]}, llm-cluster's shape plus each cluster's name (its most distinctive
    words) and size. The same --seed gives the same clusters.

    \b
    Examples:
      vibes cluster docs 10
      vibes cluster docs 10 --summary -m gpt-4o-mini
      vibes cluster docs --algorithm hdbscan --min-cluster-size 20 --nl
      vibes cluster docs 8 --documents --store
    """
    if algorithm == "kmeans":
        if n is None:
            raise click.UsageError("Give N, the number of clusters (or use --algorithm hdbscan)")
        if n < 1:
            raise click.UsageError(f"N must be 1 or more, not {n}")
        if min_cluster_size is not None:
            raise click.UsageError("--min-cluster-size applies to --algorithm hdbscan only")
    else:
        if n is not None:
            raise click.UsageError("--algorithm hdbscan finds the number of clusters: give no N")
        if min_cluster_size is not None and min_cluster_size < 2:
            raise click.UsageError(f"--min-cluster-size must be 2 or more, not {min_cluster_size}")
    if truncate < 0:
        raise click.UsageError(f"--truncate must be 0 (no truncation) or more, not {truncate}")
    if seed < 0 or seed >= 2**32:
        raise click.UsageError(f"--seed must be from 0 to 2**32 - 1, not {seed}")
    if (llm_name is not None or prompt is not None) and not summary:
        raise click.UsageError("-m/--model and --prompt apply with --summary only")
    from ..analysis.cluster import cluster_collection

    target = open_database(database).collection(collection, create=False)
    result = cluster_collection(
        target,
        n,
        algorithm=algorithm,
        seed=seed,
        documents=documents,
        min_cluster_size=min_cluster_size,
        names=not no_names,
        summary=summary,
        llm=llm_name,
        prompt=prompt,
        truncate=truncate,
        store=store,
        on_summary=_progress(n) if summary and stderr_is_terminal() else None,
    )
    if result.algorithm == "hdbscan":
        how = (
            f" (on the vectors reduced to {result.reduced_to} dimensions by PCA)"
            if result.reduced_to
            else ""
        )
        click.echo(
            f"hdbscan found {len(result.clusters)} clusters and left {result.unclustered} of "
            f"{len(result.assignments)} {'points' if documents else 'items'} unclustered{how}",
            err=True,
        )
    if nl:
        for row in result.to_json():
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        _echo_array(result)


def _progress(total: int | None) -> Any:
    def report(done: Cluster) -> None:
        of = f" of {total}" if total else ""
        click.echo(f"Summarised cluster {done.id}{of}: {done.summary}", err=True)

    return report


def _echo_array(result: ClusterResult) -> None:
    """The clusters as one indented JSON array, an item a line (readable, and written by
    the C encoder rather than json's slow indenting one)."""
    rows = result.to_json()
    if not rows:
        click.echo("[]")
        return
    for number, row in enumerate(rows):
        items = row.pop("items")
        head = json.dumps(row, ensure_ascii=False, indent=4)[:-2]  # without the closing "\n}"
        lines = [("[\n" if number == 0 else "") + _indent(head) + ","]
        if items:
            lines.append('        "items": [')
            lines.append(
                ",\n".join("            " + json.dumps(item, ensure_ascii=False) for item in items)
            )
            lines.append("        ]")
        else:
            lines.append('        "items": []')
        lines.append("    }" + ("," if number < len(rows) - 1 else "\n]"))
        click.echo("\n".join(lines))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())

"""``vibes index``: show, rebuild or drop a collection's approximate index."""

from __future__ import annotations

import json

import click

from . import cli
from .options import database_option, open_database


@cli.command()
@click.argument("collection")
@click.option("--rebuild", is_flag=True, help="Build the index again from every stored vector")
@click.option("--drop", is_flag=True, help="Delete the index; searches run exactly from now on")
@click.option("--connectivity", type=click.IntRange(4, 256), help="HNSW links per node (M)")
@click.option("--expansion-add", type=click.IntRange(8, 4096), help="HNSW build depth")
@click.option("--expansion-search", type=click.IntRange(8, 4096), help="HNSW search depth")
@database_option
def index(
    collection: str,
    rebuild: bool,
    drop: bool,
    connectivity: int | None,
    expansion_add: int | None,
    expansion_search: int | None,
    database: str | None,
) -> None:
    """Show, rebuild or drop the approximate index of COLLECTION.

    Prints its kind, size, parameters and staleness as JSON.

    Collections get an index automatically once they hold $VIBES_INDEX_MIN_ITEMS items
    (default 20,000); it is kept in step with every write and bypassed when unusable.

    \b
    Examples:
      vibes index docs
      vibes index docs --rebuild
      vibes index docs --rebuild --connectivity 32 --expansion-search 128
      vibes index docs --drop
    """
    if rebuild and drop:
        raise click.UsageError("Give --rebuild or --drop, not both")
    tuning = {
        key: value
        for key, value in (
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
        )
        if value is not None
    }
    if tuning and not rebuild:
        raise click.UsageError("HNSW parameters apply with --rebuild")
    db = open_database(database)
    target = db.collection(collection, create=False)
    if drop:
        target.drop_index()
    elif rebuild:
        target.build_index(**tuning)
    status = target.index_status()
    click.echo(json.dumps(status))
    if status.get("usable") is False:
        # The JSON says it too, but a person reading the terminal should not miss it.
        click.echo(
            f"Warning: The index of collection {collection!r} {status['problem']}; "
            f"{status['advice']}",
            err=True,
        )

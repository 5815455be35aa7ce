"""``vibes index``: show, build, rebuild or drop a collection's indexes (approximate
vector index, full-text index)."""

from __future__ import annotations

import json

import click

from . import cli
from .options import database_option, open_database


@cli.command()
@click.argument("collection")
@click.option(
    "--fts",
    is_flag=True,
    help="Act on the full-text index: build it if missing (with --rebuild/--drop: those)",
)
@click.option("--tokenizer", help="With --fts: the FTS5 tokenizer, e.g. 'unicode61'")
@click.option("--rebuild", is_flag=True, help="Build the index again from every stored item")
@click.option("--drop", is_flag=True, help="Delete the index; searches run without it")
@click.option("--connectivity", type=click.IntRange(4, 256), help="HNSW links per node (M)")
@click.option("--expansion-add", type=click.IntRange(8, 4096), help="HNSW build depth")
@click.option("--expansion-search", type=click.IntRange(8, 4096), help="HNSW search depth")
@database_option
def index(
    collection: str,
    fts: bool,
    tokenizer: str | None,
    rebuild: bool,
    drop: bool,
    connectivity: int | None,
    expansion_add: int | None,
    expansion_search: int | None,
    database: str | None,
) -> None:
    """Show, rebuild or drop the indexes of COLLECTION.

    Prints the approximate index's kind, size, parameters and staleness as JSON, with
    the full-text index's state under "fulltext".

    Collections get an approximate index automatically once they hold
    $VIBES_INDEX_MIN_ITEMS items (default 20,000); it is kept in step with every write
    and bypassed when unusable. New collections get a full-text index (for 'vibes
    similar --mode text|hybrid'); --fts builds one for an older collection from its
    stored text.

    \b
    Examples:
      vibes index docs
      vibes index docs --rebuild
      vibes index docs --rebuild --connectivity 32 --expansion-search 128
      vibes index docs --drop
      vibes index docs --fts
      vibes index docs --fts --rebuild --tokenizer 'unicode61 remove_diacritics 2'
      vibes index docs --fts --drop
    """
    if rebuild and drop:
        raise click.UsageError("Give --rebuild or --drop, not both")
    if tokenizer is not None and not fts:
        raise click.UsageError("--tokenizer applies with --fts")
    tuning = {
        key: value
        for key, value in (
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
        )
        if value is not None
    }
    if tuning and (not rebuild or fts):
        raise click.UsageError("HNSW parameters apply with --rebuild (without --fts)")
    db = open_database(database)
    target = db.collection(collection, create=False)
    if fts:
        if drop:
            target.drop_fulltext()
        elif rebuild or target.fulltext_status()["state"] in ("none", "damaged"):
            target.build_fulltext(tokenizer)
        elif tokenizer is not None:
            raise click.UsageError("The full-text index exists: add --rebuild to change it")
    elif drop:
        target.drop_index()
    elif rebuild:
        target.build_index(**tuning)
    status = target.index_status()
    status["fulltext"] = target.fulltext_status()
    click.echo(json.dumps(status))
    if status.get("usable") is False:
        # The JSON says it too, but a person reading the terminal should not miss it.
        click.echo(
            f"Warning: The index of collection {collection!r} {status['problem']}; "
            f"{status['advice']}",
            err=True,
        )

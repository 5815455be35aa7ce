"""``vibes related``: every item's nearest neighbours, precomputed, and read back."""

from __future__ import annotations

import click

from . import cli
from .options import database_option, emit_json_lines, emit_table, open_database, stderr_is_terminal


@cli.command()
@click.argument("collection")
@click.argument("id", required=False)
@click.option(
    "-n",
    "--number",
    type=click.IntRange(min=1),
    help="Neighbours kept per item (default 10, or what the collection keeps); "
    "with ID: how many to print",
)
@click.option("--documents", is_flag=True, help="Relate chunked documents as wholes")
@click.option("--rebuild", is_flag=True, help="Compute every list again")
@click.option("--drop", is_flag=True, help="Delete the related items")
@click.option("--status", is_flag=True, help="Only report what is stored")
@click.option("--table", is_flag=True, help="With ID: an aligned table, not JSON lines")
@database_option
def related(
    collection: str,
    id: str | None,
    number: int | None,
    documents: bool,
    rebuild: bool,
    drop: bool,
    status: bool,
    table: bool,
    database: str | None,
) -> None:
    """Precompute every item's nearest neighbours into the database, or read one item's.

    \b
    Without ID: computes each item's N most similar items (10 by default) and stores
    them in the vibes_similarities table (id, other_id, score); later changes are
    applied incrementally, by any write and before any read. Prints a status line.
    With ID: prints that item's related items, best first, as 'vibes similar' does.

    \b
    Examples:
      vibes related docs -n 10
      vibes related docs README.md
      vibes related docs --documents    # chunked documents as wholes
    """
    from ..analysis import related as relations

    options = sum((rebuild, drop, status))
    if options > 1:
        raise click.UsageError("Give one of --rebuild, --drop and --status")
    if id is not None and (options or documents):
        raise click.UsageError("With an ID, related only reads: drop --rebuild/--drop/--status")
    target = open_database(database).collection(collection, create=False)
    if id is not None:
        found, warnings = relations.read_related(target, id, number)
        for message in warnings:
            click.echo(f"Warning: {message}", err=True)
        rows = relations.hydrate(target, found)
        if table:
            emit_table(rows, ["id", "score", "content"])
        else:
            emit_json_lines(rows)
        return
    if drop:
        relations.drop_related(target)
        emit_json_lines([relations.related_status(target).to_dict()])
        return
    if status:
        emit_json_lines([relations.related_status(target).to_dict()])
        return
    shown: list[int] = []

    def show(done: int, total: int) -> None:
        shown.append(done)
        click.echo(f"\rRelating items: {done:,} of {total:,}", err=True, nl=False)

    progress = show if stderr_is_terminal() else None
    current = relations.related_status(target)
    n = number or current.n or relations.DEFAULT_N
    unchanged = current.state == "ready" and current.n == n and current.documents == documents
    if unchanged and not rebuild:
        result = relations.update_related(target, progress=progress)
    else:
        result = relations.build_related(target, n, documents=documents, progress=progress)
    if shown:
        click.echo("", err=True)
    emit_json_lines([(result or relations.related_status(target)).to_dict()])

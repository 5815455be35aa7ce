"""``vibes collections``: list, delete, export and copy collections; ``path``."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from ..copying import DEFAULT_BATCH_SIZE, copy_collection, source_collection
from ..errors import VibesError
from . import Interrupted, cli
from .options import (
    DATABASE_VARIABLES,
    DefaultGroup,
    database_option,
    default_database,
    emit_json_lines,
    emit_table,
    open_database,
    stderr_is_terminal,
)

if TYPE_CHECKING:
    from ..collection import Collection


@cli.group(cls=DefaultGroup, default_command="list")
def collections() -> None:
    """List and manage collections (default: list)."""


@collections.command(name="list")
@click.option("json_", "--json", is_flag=True, help="A JSON array, as 'llm collections --json'")
@click.option(
    "--nl", is_flag=True, help="JSON lines: name, model, count and dimensions of each collection"
)
@click.option("--table", is_flag=True, help="An aligned table of the same")
@database_option
def collections_list(json_: bool, nl: bool, table: bool, database: str | None) -> None:
    """List collections with their model and item count.

    As 'llm collections list' prints them; --nl (JSON lines) and --table add each
    collection's dimensions.

    \b
    Examples:
      vibes collections
      vibes collections --json
      vibes collections --nl | jq .dimensions
      vibes collections --table
    """
    if json_ + nl + table > 1:
        raise click.UsageError("Give one of --json, --nl and --table")
    infos = open_database(database).collections()
    if nl:
        emit_json_lines(info.to_dict() for info in infos)
    elif table:
        emit_table([info.to_dict() for info in infos], ["name", "model", "count", "dimensions"])
    elif json_:
        rows = [
            {"name": info.name, "model": info.model, "num_embeddings": info.count} for info in infos
        ]
        click.echo(json.dumps(rows, indent=4))
    else:
        for info in infos:
            click.echo(f"{info.name}: {info.model}")
            click.echo(f"  {info.count} embedding{'' if info.count == 1 else 's'}")


@collections.command(name="path")
def collections_path() -> None:
    """Print the path of the default database, as 'vibes path' does.

    \b
    Example:
      vibes collections path
    """
    click.echo(default_database())


@collections.command(name="delete")
@click.argument("name")
@database_option
def collections_delete(name: str, database: str | None) -> None:
    """Delete a collection and all its items.

    \b
    Example:
      vibes collections delete old-docs
    """
    open_database(database).collection(name, create=False).delete()


@collections.command(name="export")
@click.argument("name")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["nl", "json", "csv"]),
    default="nl",
    show_default=True,
    help="Output format",
)
@click.option("--vectors", is_flag=True, help="Include each item's vector as 'embedding'")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="File to write (written whole, or not at all)",
)
@database_option
def collections_export(
    name: str, format_: str, vectors: bool, output: str, database: str | None
) -> None:
    """Write a collection's items for 'embed-multi' to read back.

    Each item's id, content and metadata; with --vectors, its vector too, which
    embed-multi stores as is instead of embedding the content again.

    \b
    Examples:
      vibes collections export docs > docs.jsonl
      vibes collections export docs --vectors -o backup.jsonl
      vibes embed-multi docs-copy backup.jsonl --store
    """
    if not output.strip():
        raise click.UsageError("-o/--output needs a file name (or - for stdout)")
    target = open_database(database).collection(name, create=False)
    if output == "-":
        try:
            _export(target, format_, vectors, sys.stdout)
            sys.stdout.flush()
        except OSError as error:
            if isinstance(error, BrokenPipeError):
                raise
            raise click.ClickException(
                f"Cannot write the export: {error.strerror or error}"
            ) from None
        return
    # Written beside the destination and renamed over it at the end: a full disk or an
    # error midway never leaves a truncated file where a good export used to be.
    path = Path(output)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as file:
            _export(target, format_, vectors, file)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"Cannot write {output}: {error.strerror or error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _export(target: Collection, format_: str, vectors: bool, output: IO[str]) -> None:
    items = target.items(vectors=vectors)
    rows = (
        {
            "id": item["id"],
            "content": item["content"],
            "metadata": item["metadata"],
            **({"embedding": item["vector"]} if vectors else {}),
        }
        for item in items
    )
    if format_ == "nl":
        for row in rows:
            output.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif format_ == "json":
        output.write("[")
        for number, row in enumerate(rows):
            output.write(("," if number else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        output.write("\n]\n")
    else:
        columns = ["id", "content", "metadata"] + (["embedding"] if vectors else [])
        writer = csv.writer(output)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                [
                    row["id"],
                    row["content"] or "",
                    json.dumps(row["metadata"]) if row["metadata"] else "",
                    *([json.dumps(row["embedding"])] if vectors else []),
                ]
            )


@collections.command(name="copy")
@click.argument("name")
@click.option(
    "from_",
    "--from",
    metavar="PATH_OR_URL",
    type=click.Path(dir_okay=False, allow_dash=False),
    envvar=list(DATABASE_VARIABLES),
    help="Database to copy from (default: $VIBES_DB, else $LLM_EMBEDDINGS_DB, else the one "
    "'vibes path' prints)",
)
@click.option(
    "--to",
    metavar="PATH_OR_URL",
    type=click.Path(dir_okay=False, allow_dash=False),
    help="Database to copy into, created if missing (default: the --from database)",
)
@click.option("as_", "--as", metavar="NEWNAME", help="Name of the copy (default: NAME)")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Items per batch (and transaction)",
)
def collections_copy(
    name: str, from_: str | None, to: str | None, as_: str | None, batch_size: int
) -> None:
    """Copy a collection to another database, or under another name, as stored.

    Vectors, content, metadata, chunked documents and sources are copied without
    embedding anything again (the model need not be installed). Run again, it brings
    the copy up to date: only what changed is written, and what the source no longer
    holds is deleted. Prints the counts as a JSON line.

    \b
    Examples:
      vibes collections copy docs --from docs.db --to backup.db
      vibes collections copy docs --from docs.db --to backup.db --as docs-2024
      vibes collections copy docs --from docs.db --as docs-before-rechunk
      vibes collections copy docs --from docs.db --to postgresql://localhost/vibes
    """
    if to is None and as_ is None:
        raise click.UsageError("Give --to DATABASE, --as NEWNAME, or both")
    source = open_database(from_)
    # Checked before the destination is opened: a mistake creates no database file.
    source_collection(source, name)
    destination = source if to is None else open_database(to, create=True)
    where = f"collection {name!r} of {source.label} to {as_ or name!r} in {destination.label}"

    # Source items gone through (every batch up to them committed), and of how many.
    done, total = 0, 0

    def show(count: int, of: int) -> None:
        nonlocal done, total
        done, total = count, of
        if stderr_is_terminal():
            click.echo(f"\rCopying items: {count:,} of {of:,}", err=True, nl=False)

    try:
        stats = copy_collection(
            source, name, destination, new_name=as_, batch_size=batch_size, progress=show
        )
    except KeyboardInterrupt:
        raise Interrupted(
            f"Interrupted after {done:,} of {total:,} items (those are copied); run the "
            "same command again to resume"
        ) from None
    except VibesError as error:
        kept = f" ({done:,} items before it were copied; re-run to resume)" if done else ""
        raise click.ClickException(f"{error}{kept}") from None
    finally:
        if done and stderr_is_terminal():
            click.echo("", err=True)
    # (stats.warnings were issued as Python warnings too: printed once, on stderr)
    click.echo(
        f"Copied {stats.copied}, updated {stats.updated}, unchanged {stats.unchanged}, "
        f"deleted {stats.deleted} items: {where}",
        err=True,
    )
    emit_json_lines(
        [
            {
                "collection": name,
                "from": source.label,
                "to": destination.label,
                "as": as_ or name,
                **stats.to_dict(),
            }
        ]
    )

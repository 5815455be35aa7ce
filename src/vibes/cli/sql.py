"""``vibes sql``: a query against a database, with vibes' SQL functions loaded."""

from __future__ import annotations

import base64
from typing import Any

import click

from . import cli
from .options import emit_json_lines, emit_table


def _cell(value: Any) -> Any:
    # Blobs (vectors) as sqlite-utils writes them in JSON.
    if isinstance(value, bytes):
        return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}
    return value


@cli.command()
@click.argument("database", type=click.Path(dir_okay=False))
@click.argument("query")
@click.option("-p", "--param", nargs=2, multiple=True, help="A named parameter: -p name value")
@click.option("--write", is_flag=True, help="Allow the query to change the database")
@click.option("--table", is_flag=True, help="Print an aligned table, not JSON lines")
def sql(
    database: str, query: str, param: tuple[tuple[str, str], ...], write: bool, table: bool
) -> None:
    """Run an SQL query with vibes' functions loaded; print the rows as JSON lines.

    \b
    Functions: llm_embed(model, text), llm_embed_cosine(a, b), llm_embed_decode(blob),
    vibes_similar(collection, text_or_id[, n]) (hits as a JSON array, for json_each),
    and the aggregate vibes_mean(vector). The database is opened read-only unless
    --write is given.

    \b
    Examples:
      vibes sql docs.db "select json_extract(hit.value, '$.id') as id,
          json_extract(hit.value, '$.score') as score
          from json_each(vibes_similar('docs', 'restore a backup', 3)) as hit"
      vibes sql docs.db "select llm_embed_cosine(llm_embed('minilm', :a),
          llm_embed('minilm', :b)) as similarity" -p a 'a cat' -p b 'a kitten'
      vibes sql docs.db "select count(*), length(vibes_mean(embedding)) from embeddings"
    """
    import sqlite3
    from pathlib import Path

    from ..sqlfunctions import last_error, register
    from ..store import is_server_url
    from ..store.sqlite import readonly_uri

    if is_server_url(database):
        raise click.ClickException(
            "vibes sql runs SQLite's SQL on a database file; on PostgreSQL use psql, or copy "
            "the collection to a file first ('vibes collections copy NAME --from URL --to FILE')"
        )
    path = Path(database)
    if not path.is_file():
        raise click.ClickException(f"No database at {database}")
    try:
        uri = path.resolve().as_uri() if write else readonly_uri(path)
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        register(conn, readonly=not write)
        cursor = conn.execute(query, dict(param))
        columns = [column[0] for column in cursor.description or ()]
        rows = [dict(zip(columns, map(_cell, row))) for row in cursor]
    except sqlite3.Error as error:
        message = str(error)
        if "user-defined function raised exception" in message and last_error():
            message = str(last_error())
        raise click.ClickException(f"SQL: {message}") from None
    if table:
        emit_table(rows, columns)
    else:
        emit_json_lines(rows)

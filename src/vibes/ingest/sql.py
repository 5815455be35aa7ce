"""Rows from a SQL query against a SQLite database, with other databases attached."""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InputError
from .rows import Row


def read_sql(
    database: str, query: str, attach: Sequence[tuple[str, str]] = ()
) -> tuple[Iterator[Row], int | None]:
    """Rows of ``query`` and their count. Reads on a connection of its own, so the rows
    stream while the same database is written to."""
    # Quoted: a path holding '?' or '#' would otherwise end the URI early.
    location = urllib.parse.quote(str(Path(database).resolve()))
    conn = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    try:
        for alias, path in attach:
            if not Path(path).is_file():
                raise InputError(f"Cannot attach {path}: no such file")
            conn.execute("ATTACH DATABASE ? AS ?", (str(Path(path).resolve()), alias))
        cursor = conn.execute(query)
    except sqlite3.Error as error:
        conn.close()
        raise InputError(f"SQL query failed: {error}") from None
    if cursor.description is None:
        conn.close()
        raise InputError("The SQL query returns no rows (is it a SELECT?)")
    columns = [column[0] for column in cursor.description]
    try:
        (count,) = conn.execute(f"SELECT count(*) FROM ({query})").fetchone()
    except sqlite3.Error:
        count = None

    def rows() -> Iterator[Row]:
        try:
            for number, values in enumerate(cursor, 1):
                yield f"SQL row {number}", dict(zip(columns, values))
        except sqlite3.Error as error:
            raise InputError(f"SQL query failed: {error}") from None
        finally:
            conn.close()

    return rows(), count

"""vibes as a Datasette plugin, found through Datasette's entry point: every connection
Datasette opens gets vibes' SQL functions (:mod:`vibes.sqlfunctions`)."""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from .sqlfunctions import register


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    register(conn)

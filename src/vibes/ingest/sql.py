"""Rows from a SQL query against the database (``embed-multi --sql``), other files attached."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..store import Store
from .rows import Row


def read_sql(
    store: Store, query: str, attach: Sequence[tuple[str, str]] = ()
) -> tuple[Iterator[Row], int | None]:
    """Rows of ``query`` and their count. The store reads them on a connection of its own,
    so the rows stream while the same database is written to."""
    rows, count = store.read_query(query, attach)

    def numbered() -> Iterator[Row]:
        for number, row in enumerate(rows, 1):
            yield f"SQL row {number}", row

    return numbered(), count

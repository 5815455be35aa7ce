"""Storage backends behind one interface (:class:`Store`). SQLite is the default and the
format shared with ``llm``; :func:`open_store` picks the backend from a path or URL."""

from __future__ import annotations

from pathlib import Path

from .base import (
    Candidates,
    ChunkRecord,
    ChunkText,
    Clustering,
    ClusterRecord,
    CollectionInfo,
    CollectionRecord,
    DocumentRecord,
    IndexState,
    ItemUpdate,
    ItemWrite,
    RelatedState,
    Store,
    StoredItem,
    Transaction,
    VectorMatrix,
)

__all__ = [
    "Candidates",
    "ChunkRecord",
    "ChunkText",
    "ClusterRecord",
    "Clustering",
    "CollectionInfo",
    "CollectionRecord",
    "DocumentRecord",
    "IndexState",
    "ItemUpdate",
    "ItemWrite",
    "RelatedState",
    "Store",
    "StoredItem",
    "Transaction",
    "VectorMatrix",
    "is_server_url",
    "open_store",
]

#: URL schemes of server databases, each handled by a backend of its own.
SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(location: str | Path) -> bool:
    """Whether ``location`` names a database server rather than a file."""
    return str(location).startswith(SERVER_SCHEMES)


def open_store(location: str | Path, *, readonly: bool = False, create: bool = True) -> Store:
    """The backend for ``location``: a ``postgresql://`` URL selects PostgreSQL (with
    pgvector), anything else is a SQLite file path (or ``:memory:``). ``readonly``
    opens it so that nothing can be written; without ``create``, a server database that
    holds no vibes tables yet is an error, as a missing file is (the caller checks
    files)."""
    text = str(location)
    if is_server_url(text):
        from .postgres import PostgresStore

        return PostgresStore(text, readonly=readonly, create=create)
    from .sqlite import SQLiteStore

    return SQLiteStore(text, readonly=readonly)

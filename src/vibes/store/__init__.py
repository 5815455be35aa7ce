"""Storage backends. SQLite is the default and the format shared with ``llm``."""

from .sqlite import CollectionRecord, DocumentRecord, IndexState, SQLiteStore, StoredItem

__all__ = [
    "CollectionRecord",
    "DocumentRecord",
    "IndexState",
    "SQLiteStore",
    "StoredItem",
]

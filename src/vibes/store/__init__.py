"""Storage backends. SQLite is the default and the format shared with ``llm``."""

from .sqlite import CollectionRecord, IndexState, SQLiteStore, StoredItem

__all__ = ["CollectionRecord", "IndexState", "SQLiteStore", "StoredItem"]

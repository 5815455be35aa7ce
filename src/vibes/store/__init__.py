"""Storage backends. SQLite is the default and the format shared with ``llm``."""

from .sqlite import CollectionRecord, SQLiteStore, StoredItem

__all__ = ["CollectionRecord", "SQLiteStore", "StoredItem"]

"""The SQLite storage layer: the tables ``llm`` 0.36 uses, plus vibes' own ``vibes_`` tables.

This module only speaks SQL; it knows nothing of models or search.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatabaseOpenError

# llm creates these through sqlite-utils; the statements below produce the same schema.
_LLM_TABLES = {
    "collections": """
CREATE TABLE "collections" (
   "id" INTEGER PRIMARY KEY,
   "name" TEXT,
   "model" TEXT
)""",
    "embeddings": """
CREATE TABLE "embeddings" (
   "collection_id" INTEGER REFERENCES "collections"("id"),
   "id" TEXT,
   "embedding" BLOB,
   "content" TEXT,
   "content_blob" BLOB,
   "content_hash" BLOB,
   "metadata" TEXT,
   "updated" INTEGER,
   PRIMARY KEY ("collection_id", "id")
)""",
}
_LLM_INDEXES = {
    "idx_collections_name": """CREATE UNIQUE INDEX "idx_collections_name"
    ON "collections" ("name")""",
    "idx_embeddings_content_hash": """CREATE INDEX "idx_embeddings_content_hash"
    ON "embeddings" ("content_hash")""",
}
_LLM_EMBEDDING_COLUMNS = {
    "collection_id",
    "id",
    "embedding",
    "content",
    "content_blob",
    "content_hash",
    "metadata",
    "updated",
}
_MIGRATIONS_TABLE = """
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
)"""
_MIGRATIONS_INDEX = """CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name")"""
LLM_MIGRATION_SET = "llm.embeddings"
LLM_MIGRATIONS = (
    "m001_create_tables",
    "m002_foreign_key",
    "m003_add_updated",
    "m004_store_content_hash",
    "m005_add_content_blob",
)

VIBES_MIGRATION_SET = "vibes"
# vibes' own schema changes, applied in order and recorded in _sqlite_migrations.
VIBES_MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "m001_vibes_collections",
        """
CREATE TABLE "vibes_collections" (
   "collection_id" INTEGER PRIMARY KEY REFERENCES "collections"("id"),
   "dimensions" INTEGER,
   "distance" TEXT NOT NULL DEFAULT 'cosine',
   "settings" TEXT,
   "created" INTEGER
)""",
    ),
)

# SQLite's limit on bound parameters is 32766 in modern builds, 999 in old ones.
_MAX_PARAMS = 900


@dataclass(frozen=True)
class CollectionRecord:
    """A row of ``collections`` joined with vibes' settings for it."""

    id: int
    name: str
    model: str
    dimensions: int | None
    distance: str


@dataclass(frozen=True)
class StoredItem:
    """What the store holds for one item, less its vector."""

    id: str
    content_hash: bytes | None
    content: str | None
    content_blob: bytes | None
    metadata: str | None


def _chunks(values: Sequence, size: int = _MAX_PARAMS) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _now_iso() -> str:
    return str(datetime.datetime.now(datetime.timezone.utc))


class SQLiteStore:
    """One SQLite database file holding collections of embeddings."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        #: Bumped after every commit made through this store; lets caches notice own writes.
        self.write_generation = 0
        self.readonly = False
        self.conn = self._connect()
        try:
            self._ensure_schema()
        except sqlite3.DatabaseError as error:
            self.conn.close()
            raise DatabaseOpenError(f"Cannot open database {self.path}: {error}") from None

    # -- connection and schema -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            parent = Path(self.path).resolve().parent
            if not parent.is_dir():
                raise DatabaseOpenError(
                    f"Cannot open database {self.path}: directory {parent} does not exist"
                )
        try:
            # isolation_level=None: transactions are explicit (see transaction()).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            raise DatabaseOpenError(f"Cannot open database {self.path}: {error}") from None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            # A read-only file (or directory) still serves searches; writes say why they fail.
            self.readonly = True
        return conn

    def _schema_names(self, kind: str) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
        return {row[0] for row in rows}

    def _applied_migrations(self, migration_set: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (migration_set,)
        )
        return {row[0] for row in rows}

    def _ensure_schema(self) -> None:
        tables = self._schema_names("table")
        wanted_vibes = {name for name, _ in VIBES_MIGRATIONS}
        if {"collections", "embeddings", "_sqlite_migrations"} <= tables and (
            wanted_vibes <= self._applied_migrations(VIBES_MIGRATION_SET)
        ):
            return  # the common case: one query and done
        if "embeddings" in tables:
            columns = {row[1] for row in self.conn.execute("PRAGMA table_info(embeddings)")}
            missing = _LLM_EMBEDDING_COLUMNS - columns
            if missing:
                raise DatabaseOpenError(
                    f"Database {self.path} was written by an older llm (embeddings lacks "
                    f"{', '.join(sorted(missing))}); run 'llm collections list -d {self.path}' "
                    "once to upgrade it"
                )
        with self.transaction():
            # The statements are run only when missing, with no IF NOT EXISTS, so that the
            # schema text matches what llm itself writes.
            if "_sqlite_migrations" not in tables:
                self.conn.execute(_MIGRATIONS_TABLE)
            indexes = self._schema_names("index")
            if "idx__sqlite_migrations_migration_set_name" not in indexes:
                self.conn.execute(_MIGRATIONS_INDEX)
            for name, ddl in _LLM_TABLES.items():
                if name not in tables:
                    self.conn.execute(ddl)
            for name, ddl in _LLM_INDEXES.items():
                if name not in indexes:
                    self.conn.execute(ddl)
            # Recording llm's migrations stops llm from trying to create the tables again.
            self._record_migrations(LLM_MIGRATION_SET, LLM_MIGRATIONS)
            applied = self._applied_migrations(VIBES_MIGRATION_SET)
            for name, ddl in VIBES_MIGRATIONS:
                if name not in applied:
                    self.conn.execute(ddl)
                    self._record_migrations(VIBES_MIGRATION_SET, (name,))

    def _record_migrations(self, migration_set: str, names: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES (?, ?, ?)",
            [(migration_set, name, _now_iso()) for name in names],
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole (Ctrl-C included)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise DatabaseOpenError(f"Cannot write to database {self.path}: {error}") from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            self.conn.execute("ROLLBACK")
            raise DatabaseOpenError(f"Cannot write to database {self.path}: {error}") from None
        self.write_generation += 1

    def data_version(self) -> tuple[int, int]:
        """Changes whenever this or another connection commits to the database."""
        (other,) = self.conn.execute("PRAGMA data_version").fetchone()
        return other, self.write_generation

    def close(self) -> None:
        self.conn.close()

    # -- collections -------------------------------------------------------------------------

    _COLLECTION_SELECT = """
        SELECT c.id, c.name, c.model, v.dimensions, coalesce(v.distance, 'cosine')
        FROM collections c LEFT JOIN vibes_collections v ON v.collection_id = c.id
    """

    def get_collection(self, name: str) -> CollectionRecord | None:
        row = self.conn.execute(self._COLLECTION_SELECT + " WHERE c.name = ?", (name,)).fetchone()
        return CollectionRecord(*row) if row else None

    def create_collection(
        self, name: str, model_id: str, dimensions: int | None, distance: str = "cosine"
    ) -> CollectionRecord:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO collections (name, model) VALUES (?, ?)", (name, model_id)
            )
            conn.execute(
                "INSERT INTO vibes_collections (collection_id, dimensions, distance, created) "
                "VALUES (?, ?, ?, strftime('%s', 'now'))",
                (cursor.lastrowid, dimensions, distance),
            )
        record = self.get_collection(name)
        assert record is not None
        return record

    def set_dimensions(self, collection_id: int, dimensions: int) -> None:
        """Record a collection's dimensions (for collections ``llm`` created, on first write)."""
        self.conn.execute(
            "INSERT INTO vibes_collections (collection_id, dimensions) VALUES (?, ?) "
            "ON CONFLICT (collection_id) DO UPDATE SET dimensions = excluded.dimensions",
            (collection_id, dimensions),
        )

    def sample_dimensions(self, collection_id: int) -> int | None:
        """Dimensions read off one stored vector, for collections with none recorded."""
        row = self.conn.execute(
            "SELECT length(embedding) FROM embeddings WHERE collection_id = ? LIMIT 1",
            (collection_id,),
        ).fetchone()
        return row[0] // 4 if row and row[0] else None

    def list_collections(self) -> list[dict[str, object]]:
        rows = self.conn.execute(
            """
            SELECT c.name, c.model, v.dimensions,
                   (SELECT count(*) FROM embeddings e WHERE e.collection_id = c.id),
                   (SELECT length(embedding) FROM embeddings e WHERE e.collection_id = c.id
                    LIMIT 1)
            FROM collections c LEFT JOIN vibes_collections v ON v.collection_id = c.id
            ORDER BY c.name
            """
        ).fetchall()
        return [
            {
                "name": name,
                "model": model,
                "count": count,
                "dimensions": dimensions or (blob_length // 4 if blob_length else None),
            }
            for name, model, dimensions, count, blob_length in rows
        ]

    def delete_collection(self, collection_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM embeddings WHERE collection_id = ?", (collection_id,))
            conn.execute("DELETE FROM vibes_collections WHERE collection_id = ?", (collection_id,))
            conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # -- items -------------------------------------------------------------------------------

    def count(self, collection_id: int) -> int:
        (count,) = self.conn.execute(
            "SELECT count(*) FROM embeddings WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        return count

    def get_items(self, collection_id: int, ids: Sequence[str]) -> dict[str, StoredItem]:
        """The stored items among ``ids`` (missing ids are absent from the result)."""
        found: dict[str, StoredItem] = {}
        for part in _chunks(list(ids)):
            rows = self.conn.execute(
                "SELECT id, content_hash, content, content_blob, metadata FROM embeddings "
                f"WHERE collection_id = ? AND id IN ({','.join('?' * len(part))})",
                (collection_id, *part),
            )
            for row in rows:
                found[row[0]] = StoredItem(*row)
        return found

    def vectors_by_hash(self, collection_id: int, hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        """A stored vector for each content hash already in the collection."""
        found: dict[bytes, bytes] = {}
        for part in _chunks(list(hashes)):
            rows = self.conn.execute(
                "SELECT content_hash, embedding FROM embeddings WHERE collection_id = ? "
                f"AND content_hash IN ({','.join('?' * len(part))})",
                (collection_id, *part),
            )
            for content_hash, embedding in rows:
                found[content_hash] = embedding
        return found

    def get_vector(self, collection_id: int, item_id: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT embedding FROM embeddings WHERE collection_id = ? AND id = ?",
            (collection_id, item_id),
        ).fetchone()
        return row[0] if row else None

    def upsert(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
        """Insert or replace items: rows of (collection_id, id, embedding, content,
        content_blob, content_hash, metadata, updated). A NULL metadata keeps the stored one."""
        conn.executemany(
            """
            INSERT INTO embeddings (collection_id, id, embedding, content, content_blob,
                                    content_hash, metadata, updated)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (collection_id, id) DO UPDATE SET
                embedding = excluded.embedding,
                content = excluded.content,
                content_blob = excluded.content_blob,
                content_hash = excluded.content_hash,
                metadata = coalesce(excluded.metadata, embeddings.metadata),
                updated = excluded.updated
            """,
            rows,
        )

    def update_stored(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
        """Refresh content and metadata of unchanged items, keeping their vectors: rows of
        (content, content_blob, metadata, updated, collection_id, id)."""
        conn.executemany(
            "UPDATE embeddings SET content = coalesce(?, content), "
            "content_blob = coalesce(?, content_blob), metadata = coalesce(?, metadata), "
            "updated = ? WHERE collection_id = ? AND id = ?",
            rows,
        )

    def delete_items(self, collection_id: int, ids: Sequence[str]) -> int:
        deleted = 0
        with self.transaction() as conn:
            for part in _chunks(list(ids)):
                cursor = conn.execute(
                    "DELETE FROM embeddings WHERE collection_id = ? "
                    f"AND id IN ({','.join('?' * len(part))})",
                    (collection_id, *part),
                )
                deleted += cursor.rowcount
        return deleted

    def load_vectors(self, collection_id: int) -> tuple[list[str], list[bytes]]:
        """Every id and vector blob of a collection, in one pass."""
        rows = self.conn.execute(
            "SELECT id, embedding FROM embeddings WHERE collection_id = ?", (collection_id,)
        ).fetchall()
        return [row[0] for row in rows], [row[1] for row in rows]

    def iter_items(self, collection_id: int, with_vectors: bool = False) -> Iterator[tuple]:
        """(id, content, content_blob, metadata[, embedding]) for every item, ordered by id."""
        columns = "id, content, content_blob, metadata" + (", embedding" if with_vectors else "")
        yield from self.conn.execute(
            f"SELECT {columns} FROM embeddings WHERE collection_id = ? ORDER BY id",
            (collection_id,),
        )

"""The SQLite storage layer: the tables ``llm`` 0.36 uses, plus vibes' own ``vibes_`` tables.

This module only speaks SQL; it knows nothing of models or search.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

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
VIBES_MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "m001_vibes_collections",
        (
            """
CREATE TABLE "vibes_collections" (
   "collection_id" INTEGER PRIMARY KEY REFERENCES "collections"("id"),
   "dimensions" INTEGER,
   "distance" TEXT NOT NULL DEFAULT 'cosine',
   "settings" TEXT,
   "created" INTEGER
)""",
        ),
    ),
    (
        # Every change to a vector is logged by triggers, whoever makes it (vibes, llm, plain
        # SQL), so a persisted index can tell exactly which items changed since it was built.
        # vibes_keys gives items stable integer keys for the index: unlike rowids, they
        # survive VACUUM and INSERT OR REPLACE. The triggers use NOT EXISTS rather than
        # INSERT OR IGNORE because an outer statement's conflict policy (llm's INSERT OR
        # REPLACE, vibes' upsert) overrides the one written inside a trigger.
        "m002_change_log_and_indexes",
        (
            """
CREATE TABLE "vibes_changes" (
   "seq" INTEGER PRIMARY KEY AUTOINCREMENT,
   "collection_id" INTEGER NOT NULL,
   "item_id" TEXT NOT NULL
)""",
            'CREATE INDEX "vibes_changes_by_collection" '
            'ON "vibes_changes" ("collection_id", "seq")',
            """
CREATE TABLE "vibes_keys" (
   "key" INTEGER PRIMARY KEY AUTOINCREMENT,
   "collection_id" INTEGER NOT NULL,
   "item_id" TEXT NOT NULL,
   UNIQUE ("collection_id", "item_id")
)""",
            'INSERT INTO "vibes_keys" ("collection_id", "item_id") '
            'SELECT "collection_id", "id" FROM "embeddings" ORDER BY "collection_id", "id"',
            """
CREATE TABLE "vibes_indexes" (
   "collection_id" INTEGER PRIMARY KEY,
   "kind" TEXT NOT NULL,
   "file" TEXT,
   "seq" INTEGER NOT NULL DEFAULT 0,
   "size" INTEGER,
   "dimensions" INTEGER,
   "model" TEXT,
   "distance" TEXT,
   "params" TEXT,
   "built" INTEGER
)""",
            """
CREATE TRIGGER "vibes_embeddings_insert" AFTER INSERT ON "embeddings" BEGIN
   INSERT INTO "vibes_keys" ("collection_id", "item_id")
      SELECT new."collection_id", new."id" WHERE NOT EXISTS (
         SELECT 1 FROM "vibes_keys"
         WHERE "collection_id" = new."collection_id" AND "item_id" = new."id");
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      VALUES (new."collection_id", new."id");
END""",
            """
CREATE TRIGGER "vibes_embeddings_update"
AFTER UPDATE OF "embedding", "id", "collection_id" ON "embeddings" BEGIN
   INSERT INTO "vibes_keys" ("collection_id", "item_id")
      SELECT new."collection_id", new."id" WHERE NOT EXISTS (
         SELECT 1 FROM "vibes_keys"
         WHERE "collection_id" = new."collection_id" AND "item_id" = new."id");
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      VALUES (old."collection_id", old."id");
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      SELECT new."collection_id", new."id"
      WHERE new."id" IS NOT old."id" OR new."collection_id" IS NOT old."collection_id";
END""",
            """
CREATE TRIGGER "vibes_embeddings_delete" AFTER DELETE ON "embeddings" BEGIN
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      VALUES (old."collection_id", old."id");
END""",
        ),
    ),
    (
        # Chunked documents: which chunker cut each document (and with what settings), and
        # where each chunk lies in it. A chunk is an ordinary row of embeddings.
        "m003_chunks",
        (
            """
CREATE TABLE "vibes_documents" (
   "collection_id" INTEGER NOT NULL,
   "document_id" TEXT NOT NULL,
   "content_hash" BLOB,
   "chunker" TEXT NOT NULL,
   "settings" TEXT,
   "metadata" TEXT,
   "stored" INTEGER,
   "chunk_count" INTEGER NOT NULL,
   "updated" INTEGER,
   PRIMARY KEY ("collection_id", "document_id")
)""",
            """
CREATE TABLE "vibes_chunks" (
   "collection_id" INTEGER NOT NULL,
   "id" TEXT NOT NULL,
   "document_id" TEXT NOT NULL,
   "chunk_index" INTEGER NOT NULL,
   "start_offset" INTEGER,
   "end_offset" INTEGER,
   "start_line" INTEGER,
   "end_line" INTEGER,
   "context" TEXT,
   PRIMARY KEY ("collection_id", "id")
)""",
            'CREATE INDEX "vibes_chunks_by_document" '
            'ON "vibes_chunks" ("collection_id", "document_id", "chunk_index")',
        ),
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
class IndexState:
    """A row of ``vibes_indexes``: what the persisted index of a collection holds."""

    collection_id: int
    kind: str  # "hnsw", or "off" when the user dropped it
    file: str | None
    seq: int  # the last change it includes
    size: int | None
    dimensions: int | None
    model: str | None
    distance: str | None
    params: str | None  # JSON
    built: int | None


@dataclass(frozen=True)
class DocumentRecord:
    """A chunked document, as ``vibes_documents`` records it."""

    document_id: str
    content_hash: bytes | None
    chunker: str
    settings: str | None  # JSON
    metadata: str | None  # JSON
    stored: int
    chunk_count: int


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
            for name, statements in VIBES_MIGRATIONS:
                if name not in applied:
                    for statement in statements:
                        self.conn.execute(statement)
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
            for table in (
                "vibes_collections",
                "vibes_keys",
                "vibes_changes",
                "vibes_indexes",
                "vibes_documents",
                "vibes_chunks",
            ):
                conn.execute(f"DELETE FROM {table} WHERE collection_id = ?", (collection_id,))
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

    def delete_items(self, conn: sqlite3.Connection, collection_id: int, ids: Sequence[str]) -> int:
        """Delete items (and the chunk records of those that are chunks) in a transaction."""
        deleted = 0
        for part in _chunks(list(ids)):
            marks = ",".join("?" * len(part))
            cursor = conn.execute(
                f"DELETE FROM embeddings WHERE collection_id = ? AND id IN ({marks})",
                (collection_id, *part),
            )
            deleted += cursor.rowcount
            conn.execute(
                f"DELETE FROM vibes_chunks WHERE collection_id = ? AND id IN ({marks})",
                (collection_id, *part),
            )
        return deleted

    def item_ids(self, collection_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM embeddings WHERE collection_id = ?", (collection_id,)
        )
        return [row[0] for row in rows]

    def chunk_ids(self, collection_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM vibes_chunks WHERE collection_id = ?", (collection_id,)
        )
        return [row[0] for row in rows]

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

    # -- change log, stable keys and index state ---------------------------------------------

    def changes_since(self, collection_id: int, seq: int) -> tuple[int, list[str]]:
        """The newest change number and the distinct ids changed after ``seq``."""
        rows = self.conn.execute(
            "SELECT seq, item_id FROM vibes_changes WHERE collection_id = ? AND seq > ? "
            "ORDER BY seq",
            (collection_id, seq),
        ).fetchall()
        if not rows:
            return seq, []
        return rows[-1][0], list(dict.fromkeys(row[1] for row in rows))

    def last_change(self, collection_id: int) -> int:
        (seq,) = self.conn.execute(
            "SELECT max(seq) FROM vibes_changes WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        return seq or 0

    def prune_changes(self, conn: sqlite3.Connection, collection_id: int, up_to: int) -> None:
        conn.execute(
            "DELETE FROM vibes_changes WHERE collection_id = ? AND seq <= ?", (collection_id, up_to)
        )

    def ensure_keys(self, conn: sqlite3.Connection, collection_id: int) -> None:
        """Give every item a key (items written before vibes' triggers existed lack one)."""
        conn.execute(
            "INSERT OR IGNORE INTO vibes_keys (collection_id, item_id) "
            "SELECT collection_id, id FROM embeddings WHERE collection_id = ?",
            (collection_id,),
        )

    def keys_for_ids(self, collection_id: int, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in _chunks(list(ids)):
            rows = self.conn.execute(
                "SELECT item_id, key FROM vibes_keys WHERE collection_id = ? "
                f"AND item_id IN ({','.join('?' * len(part))})",
                (collection_id, *part),
            )
            found.update(rows)
        return found

    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for part in _chunks([int(k) for k in keys]):
            rows = self.conn.execute(
                f"SELECT key, item_id FROM vibes_keys WHERE key IN ({','.join('?' * len(part))})",
                tuple(part),
            )
            found.update(rows)
        return found

    def vectors_with_keys(
        self, collection_id: int, ids: Sequence[str] | None = None
    ) -> tuple[list[int], list[str], list[bytes]]:
        """(keys, ids, vector blobs) of the given items, or of the whole collection."""
        query = (
            "SELECT k.key, e.id, e.embedding FROM embeddings e JOIN vibes_keys k "
            "ON k.collection_id = e.collection_id AND k.item_id = e.id "
            "WHERE e.collection_id = ?"
        )
        rows: list[tuple] = []
        if ids is None:
            rows = self.conn.execute(query, (collection_id,)).fetchall()
        else:
            for part in _chunks(list(ids)):
                rows += self.conn.execute(
                    query + f" AND e.id IN ({','.join('?' * len(part))})", (collection_id, *part)
                ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def matching(
        self, collection_id: int, where: str, params: Sequence[Any]
    ) -> list[tuple[int | None, str]]:
        """(key, id) of the items for which the SQL condition ``where`` holds."""
        return self.conn.execute(
            "SELECT (SELECT key FROM vibes_keys k WHERE k.collection_id = embeddings.collection_id"
            " AND k.item_id = embeddings.id), id FROM embeddings "
            f"WHERE collection_id = ? AND ({where})",
            (collection_id, *params),
        ).fetchall()

    def pending_changes(self, collection_id: int, since: int) -> int:
        (count,) = self.conn.execute(
            "SELECT count(*) FROM vibes_changes WHERE collection_id = ? AND seq > ?",
            (collection_id, since),
        ).fetchone()
        return count

    def index_state(self, collection_id: int) -> IndexState | None:
        row = self.conn.execute(
            "SELECT collection_id, kind, file, seq, size, dimensions, model, distance, params, "
            "built FROM vibes_indexes WHERE collection_id = ?",
            (collection_id,),
        ).fetchone()
        return IndexState(*row) if row else None

    def save_index_state(
        self, conn: sqlite3.Connection, state: IndexState, replacing: str | None
    ) -> bool:
        """Record ``state`` if the recorded file is still ``replacing`` (compare and set), so
        that of two processes updating the same index at once, one wins cleanly."""
        current = conn.execute(
            "SELECT file FROM vibes_indexes WHERE collection_id = ?", (state.collection_id,)
        ).fetchone()
        if current is not None and current[0] != replacing:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO vibes_indexes (collection_id, kind, file, seq, size, "
            "dimensions, model, distance, params, built) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.collection_id,
                state.kind,
                state.file,
                state.seq,
                state.size,
                state.dimensions,
                state.model,
                state.distance,
                state.params,
                state.built,
            ),
        )
        return True

    def delete_index_state(self, conn: sqlite3.Connection, collection_id: int) -> None:
        conn.execute("DELETE FROM vibes_indexes WHERE collection_id = ?", (collection_id,))

    # -- chunked documents ----------------------------------------------------------------

    def document(self, collection_id: int, document_id: str) -> DocumentRecord | None:
        row = self.conn.execute(
            "SELECT document_id, content_hash, chunker, settings, metadata, stored, chunk_count "
            "FROM vibes_documents WHERE collection_id = ? AND document_id = ?",
            (collection_id, document_id),
        ).fetchone()
        return DocumentRecord(*row) if row else None

    def document_ids(self, collection_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT document_id FROM vibes_documents WHERE collection_id = ?", (collection_id,)
        )
        return [row[0] for row in rows]

    def upsert_chunks(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
        """Rows of (collection_id, id, document_id, chunk_index, start_offset, end_offset,
        start_line, end_line, context)."""
        conn.executemany(
            "INSERT OR REPLACE INTO vibes_chunks (collection_id, id, document_id, chunk_index, "
            "start_offset, end_offset, start_line, end_line, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def finish_document(
        self, conn: sqlite3.Connection, collection_id: int, record: DocumentRecord
    ) -> int:
        """Record a document as chunked and delete its chunks past the new count (left from
        a longer version). Returns how many stale chunks were deleted."""
        conn.execute(
            "INSERT OR REPLACE INTO vibes_documents (collection_id, document_id, content_hash, "
            "chunker, settings, metadata, stored, chunk_count, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s', 'now'))",
            (collection_id, *astuple(record)),
        )
        return self._delete_chunks(conn, collection_id, record.document_id, record.chunk_count)

    def _delete_chunks(
        self, conn: sqlite3.Connection, collection_id: int, document_id: str, keep: int = 0
    ) -> int:
        stale = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM vibes_chunks WHERE collection_id = ? AND document_id = ? "
                "AND chunk_index >= ?",
                (collection_id, document_id, keep),
            )
        ]
        for part in _chunks(stale):
            marks = ",".join("?" * len(part))
            conn.execute(
                f"DELETE FROM embeddings WHERE collection_id = ? AND id IN ({marks})",
                (collection_id, *part),
            )
            conn.execute(
                f"DELETE FROM vibes_chunks WHERE collection_id = ? AND id IN ({marks})",
                (collection_id, *part),
            )
        return len(stale)

    def delete_documents(
        self, conn: sqlite3.Connection, collection_id: int, document_ids: Iterable[str]
    ) -> int:
        """Delete documents with all their chunks; returns how many chunks went."""
        deleted = 0
        for document_id in document_ids:
            deleted += self._delete_chunks(conn, collection_id, document_id)
            conn.execute(
                "DELETE FROM vibes_documents WHERE collection_id = ? AND document_id = ?",
                (collection_id, document_id),
            )
        return deleted

    def chunk_records(self, collection_id: int, ids: Sequence[str]) -> dict[str, tuple]:
        """id -> (document_id, chunk_index, start_offset, end_offset, start_line, end_line,
        context) for the chunks among ``ids``."""
        found: dict[str, tuple] = {}
        for part in _chunks(list(ids)):
            rows = self.conn.execute(
                "SELECT id, document_id, chunk_index, start_offset, end_offset, start_line, "
                "end_line, context FROM vibes_chunks WHERE collection_id = ? "
                f"AND id IN ({','.join('?' * len(part))})",
                (collection_id, *part),
            )
            for row in rows:
                found[row[0]] = row[1:]
        return found

    def document_chunks(
        self, collection_id: int, document_id: str, first: int, last: int
    ) -> list[tuple]:
        """(id, chunk_index, start_line, end_line, content) of a document's chunks with
        indexes from ``first`` to ``last``, in order."""
        return self.conn.execute(
            "SELECT c.id, c.chunk_index, c.start_line, c.end_line, e.content "
            "FROM vibes_chunks c LEFT JOIN embeddings e "
            "ON e.collection_id = c.collection_id AND e.id = c.id "
            "WHERE c.collection_id = ? AND c.document_id = ? AND c.chunk_index BETWEEN ? AND ? "
            "ORDER BY c.chunk_index",
            (collection_id, document_id, first, last),
        ).fetchall()

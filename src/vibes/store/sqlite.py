"""The SQLite backend: the tables ``llm`` 0.36 uses, plus vibes' own ``vibes_`` tables.

This module only speaks SQL; it knows nothing of models or search. Each thread gets a
connection of its own (SQLite connections are not safe to share), except for an in-memory
database, which exists only inside its one connection and is therefore shared under a
lock. Every ``sqlite3`` error is mapped here to a :class:`~vibes.errors.VibesError`.
"""

from __future__ import annotations

import datetime
import functools
import json
import sqlite3
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import vectors as vector_format
from ..errors import (
    DatabaseOpenError,
    FilterError,
    InputError,
    QueryTimeoutError,
    StorageError,
    VibesError,
)
from .base import (
    Candidates,
    ChunkRecord,
    ChunkText,
    Clustering,
    ClusterRecord,
    CollectionInfo,
    CollectionRecord,
    DocumentRecord,
    FullTextState,
    IndexState,
    ItemUpdate,
    ItemWrite,
    RelatedState,
    Store,
    StoredItem,
    Transaction,
    VectorMatrix,
)
from .common import dump_metadata, in_parts
from .sqlite_filters import compile_filter

if TYPE_CHECKING:
    import numpy as np

    from ..filters import Filter

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
METADATA_INDEX = "vibes_embeddings_metadata"
METADATA_INDEX_MIGRATION = "m009_metadata_index"
METADATA_INDEX_DDL = (
    f'CREATE INDEX "{METADATA_INDEX}" ON "embeddings" ("collection_id", "id", "metadata") '
    'WHERE "metadata" IS NOT NULL'
)
# What the trigger on updates of embeddings does (m002 made it, m007 narrowed when it
# fires): give a renamed item its key, and log the old and the new id.
_UPDATE_TRIGGER_BODY = """   INSERT INTO "vibes_keys" ("collection_id", "item_id")
      SELECT new."collection_id", new."id" WHERE NOT EXISTS (
         SELECT 1 FROM "vibes_keys"
         WHERE "collection_id" = new."collection_id" AND "item_id" = new."id");
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      VALUES (old."collection_id", old."id");
   INSERT INTO "vibes_changes" ("collection_id", "item_id")
      SELECT new."collection_id", new."id"
      WHERE new."id" IS NOT old."id" OR new."collection_id" IS NOT old."collection_id";
END"""
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
"""
            + _UPDATE_TRIGGER_BODY,
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
    (
        # The change log has several readers (the approximate index now; the full-text index,
        # related items and copies to other backends next). Each keeps its own position, and
        # the log is pruned only below the lowest one still needed.
        "m004_change_log_positions",
        (
            """
CREATE TABLE "vibes_log_positions" (
   "collection_id" INTEGER NOT NULL,
   "consumer" TEXT NOT NULL,
   "seq" INTEGER NOT NULL,
   PRIMARY KEY ("collection_id", "consumer")
)""",
            'INSERT INTO "vibes_log_positions" ("collection_id", "consumer", "seq") '
            'SELECT "collection_id", \'index\', "seq" FROM "vibes_indexes" '
            "WHERE \"kind\" = 'hnsw'",
        ),
    ),
    (
        # Where each item (or chunked document) came from, e.g. one `--files` directory and
        # prefix: `--prune` removes only what the same source wrote, never items that came
        # from a JSONL file or the API. The trigger forgets the source of a row deleted by
        # anyone (a chunked document's own entry goes with the document).
        "m005_sources",
        (
            """
CREATE TABLE "vibes_sources" (
   "collection_id" INTEGER NOT NULL,
   "item_id" TEXT NOT NULL,
   "source" TEXT NOT NULL,
   PRIMARY KEY ("collection_id", "item_id")
)""",
            'CREATE INDEX "vibes_sources_by_source" ON "vibes_sources" ("collection_id", "source")',
            """
CREATE TRIGGER "vibes_embeddings_delete_source" AFTER DELETE ON "embeddings" BEGIN
   DELETE FROM "vibes_sources"
      WHERE "collection_id" = old."collection_id" AND "item_id" = old."id";
END""",
        ),
    ),
    (
        # An index file's seal (size, modification time, CRC-32) recorded when it is saved:
        # a file changed since is checked before the native library reads its graph, which
        # can crash on damaged links.
        "m006_index_seal",
        ('ALTER TABLE "vibes_indexes" ADD COLUMN "seal" TEXT',),
    ),
    (
        # Full-text indexes (one FTS5 table per collection, vibes_fts_<id>, its rowids the
        # stable keys) read the change log like the approximate index does; a change to
        # an item's text alone (an UPDATE of content by llm or SQL) is now logged too, and
        # an UPDATE that changes none of these (metadata only) is not.
        "m007_fulltext",
        (
            """
CREATE TABLE "vibes_fulltext" (
   "collection_id" INTEGER PRIMARY KEY,
   "tokenizer" TEXT NOT NULL,
   "keeps_text" INTEGER NOT NULL,
   "created" INTEGER
)""",
            'DROP TRIGGER "vibes_embeddings_update"',
            """
CREATE TRIGGER "vibes_embeddings_update"
AFTER UPDATE OF "embedding", "id", "collection_id", "content" ON "embeddings"
WHEN new."embedding" IS NOT old."embedding" OR new."id" IS NOT old."id"
   OR new."collection_id" IS NOT old."collection_id" OR new."content" IS NOT old."content"
BEGIN
"""
            + _UPDATE_TRIGGER_BODY,
        ),
    ),
    (
        # Analysis results kept in the database: each item's cluster (`vibes cluster
        # --store`) with the clusters' names, and each item's precomputed nearest
        # neighbours (`vibes related`), in the shape of the similarities(id, other_id,
        # score) table of Simon Willison's TIL site. Related items read the change log
        # (consumer "related") to stay in step.
        "m008_analysis",
        (
            """
CREATE TABLE "vibes_clusterings" (
   "collection_id" INTEGER PRIMARY KEY,
   "settings" TEXT,
   "created" INTEGER
)""",
            """
CREATE TABLE "vibes_clusters" (
   "collection_id" INTEGER NOT NULL,
   "cluster" INTEGER NOT NULL,
   "name" TEXT,
   "summary" TEXT,
   "size" INTEGER NOT NULL,
   PRIMARY KEY ("collection_id", "cluster")
)""",
            """
CREATE TABLE "vibes_cluster_items" (
   "collection_id" INTEGER NOT NULL,
   "item_id" TEXT NOT NULL,
   "cluster" INTEGER NOT NULL,
   PRIMARY KEY ("collection_id", "item_id")
)""",
            """
CREATE TABLE "vibes_related" (
   "collection_id" INTEGER PRIMARY KEY,
   "n" INTEGER NOT NULL,
   "documents" INTEGER NOT NULL,
   "built" INTEGER
)""",
            """
CREATE TABLE "vibes_similarities" (
   "collection_id" INTEGER NOT NULL,
   "id" TEXT NOT NULL,
   "other_id" TEXT NOT NULL,
   "score" REAL NOT NULL,
   "rank" INTEGER NOT NULL,
   PRIMARY KEY ("collection_id", "id", "other_id")
)""",
            'CREATE INDEX "vibes_similarities_by_other" '
            'ON "vibes_similarities" ("collection_id", "other_id")',
            'CREATE INDEX "vibes_similarities_by_rank" '
            'ON "vibes_similarities" ("collection_id", "rank")',
        ),
    ),
    (
        # Metadata filters read every item's metadata. In the table each row also holds
        # its vector and text, so that read went through the whole file, row by row in
        # id order (1.4 s at 1,000,000 items); this index holds just id and metadata, of
        # the items that have some (a filter that needs metadata names it: see
        # SQLiteStore.matching), and is read instead.
        METADATA_INDEX_MIGRATION,
        (METADATA_INDEX_DDL,),
    ),
)
#: Migrations that only speed queries up: a database opened read-only reads without them.
_OPTIONAL_MIGRATIONS = frozenset({METADATA_INDEX_MIGRATION})

#: SQLite 3.43 deletes from a full-text index that keeps no copy of the text; before
#: it, deleting an entry needs the text it was made from.
_CONTENTLESS_DELETE = (3, 43, 0)

# SQLite's limit on bound parameters is 32766 in modern builds, 999 in old ones.
_MAX_PARAMS = 900

_T = TypeVar("_T")


def readonly_uri(path: str | Path) -> str:
    """The URI that opens the SQLite file at ``path`` read-only (``sqlite3.connect(uri,
    uri=True)``): no statement through it can change the file. The path is quoted: a
    '?' or '#' in it would otherwise end the URI early."""
    return f"file:{urllib.parse.quote(str(Path(path).resolve()))}?mode=ro"


def _parts(values: Sequence[_T], size: int = _MAX_PARAMS) -> Iterator[Sequence[_T]]:
    return in_parts(values, size)


def _vector_matrix(
    rows: Sequence[Sequence[Any]], dimensions: int | None, with_keys: bool
) -> VectorMatrix:
    """Rows of (id, embedding blob[, key]) as one VectorMatrix, decoded in bulk."""
    import numpy as np

    if not rows:
        keys = np.empty(0, dtype=np.uint64) if with_keys else None
        return VectorMatrix([], np.empty((0, dimensions or 0), dtype=np.float32), keys)
    columns = list(zip(*rows))
    found_ids = list(columns[0])
    matrix = vector_format.blobs_to_matrix(found_ids, columns[1], dimensions)
    keys = np.asarray(columns[2], dtype=np.uint64) if with_keys else None
    return VectorMatrix(found_ids, matrix, keys)


def _now_iso() -> str:
    return str(datetime.datetime.now(datetime.timezone.utc))


def _load_json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise StorageError(f"Stored metadata is not valid JSON: {text[:60]!r}") from None
    return value if isinstance(value, dict) else {"value": value}


def _stored_item(row: Sequence[Any]) -> StoredItem:
    """A StoredItem from a row of (id, content_hash, content, content_blob, metadata, ...)."""
    return StoredItem(row[0], row[1], row[2], row[3], _load_json(row[4]))


_dump_json = dump_metadata


# SQLite's result codes for a full disk and for failed file I/O (a full disk or a file
# size limit often shows as the latter).
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


def _describe(error: sqlite3.Error, what: str) -> str:
    """One line for a SQLite error, saying plainly when the disk is full."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL or "disk is full" in str(error):
        return f"{what}: the disk is full"
    if primary == _SQLITE_IOERR or "disk I/O error" in str(error):
        return f"{what}: disk I/O error (is the disk full, or the file over a size limit?)"
    return f"{what}: {error}"


class SQLiteTransaction(Transaction):
    """A write transaction on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


def _conn(tx: Transaction) -> sqlite3.Connection:
    if not isinstance(tx, SQLiteTransaction):
        raise TypeError(f"not a SQLite transaction: {tx!r}")
    return tx.conn


class SQLiteStore(Store):
    """One SQLite database file holding collections of embeddings."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.location = str(path)
        self._memory = self.location == ":memory:" or self.location.startswith("file::memory:")
        #: Opened read-only on request (``mode=ro``): no statement can change the file,
        #: whatever asks. A file SQLite cannot write also ends up read-only (see _connect).
        self.readonly = readonly and not self._memory
        self._open_readonly = self.readonly
        # An in-memory database lives in one connection, shared under this lock; a file
        # gets a connection per thread and needs no lock (SQLite locks the file).
        self._lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        first = self._connect(first=True)
        try:
            self._ensure_schema(first)
        except sqlite3.DatabaseError as error:
            self.close()
            raise DatabaseOpenError(f"Cannot open database {self.location}: {error}") from None

    @property
    def path(self) -> str:
        return self.location

    # -- connections and schema -------------------------------------------------------------

    def _connect(self, first: bool = False) -> sqlite3.Connection:
        if not self._memory:
            parent = Path(self.location).resolve().parent
            if not parent.is_dir():
                raise DatabaseOpenError(
                    f"Cannot open database {self.location}: directory {parent} does not exist"
                )
        target, uri = self.location, False
        if self._open_readonly:
            target, uri = readonly_uri(self.location), True
        try:
            # isolation_level=None: transactions are explicit (see transaction()).
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=uri)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            raise DatabaseOpenError(f"Cannot open database {self.location}: {error}") from None
        if first and not self._open_readonly:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                # A read-only file (or directory) still serves searches; writes say why.
                self.readonly = True
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (the one shared connection, for ``:memory:``)."""
        if self._memory:
            return self._connections[0]
        conn = getattr(self._local, "conn", None)
        return conn if conn is not None else self._connect()

    def _guard(self) -> AbstractContextManager[Any]:
        return self._lock if self._memory else nullcontext()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def sidecar_directory(self) -> Path | None:
        if self._memory or not self.location:
            return None
        return Path(self.location + ".indexes")

    @staticmethod
    def _schema_names(conn: sqlite3.Connection, kind: str) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
        return {row[0] for row in rows}

    @staticmethod
    def _applied_migrations(conn: sqlite3.Connection, migration_set: str) -> set[str]:
        rows = conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (migration_set,)
        )
        return {row[0] for row in rows}

    def _schema_is_current(self, conn: sqlite3.Connection) -> bool:
        tables = self._schema_names(conn, "table")
        wanted_vibes = {name for name, _ in VIBES_MIGRATIONS}
        if self._open_readonly:
            wanted_vibes -= _OPTIONAL_MIGRATIONS
        return {"collections", "embeddings", "_sqlite_migrations"} <= tables and (
            wanted_vibes <= self._applied_migrations(conn, VIBES_MIGRATION_SET)
        )

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_is_current(conn):
            return  # the common case: two queries and done
        if self._open_readonly:
            if "embeddings" not in self._schema_names(conn, "table"):
                raise DatabaseOpenError(
                    f"Database {self.location} holds no embeddings: embed something into it "
                    f"first ('vibes embed-multi COLLECTION FILE -d {self.location}')"
                )
            raise DatabaseOpenError(
                f"Database {self.location} is opened read-only and lacks vibes' tables "
                f"(written by llm, or by an older vibes): run 'vibes collections -d "
                f"{self.location}' once to add them"
            )
        tables = self._schema_names(conn, "table")
        if "embeddings" in tables:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(embeddings)")}
            missing = _LLM_EMBEDDING_COLUMNS - columns
            if missing:
                raise DatabaseOpenError(
                    f"Database {self.location} was written by an older llm (embeddings lacks "
                    f"{', '.join(sorted(missing))}); run 'llm collections list -d "
                    f"{self.location}' once to upgrade it"
                )
        with self.transaction():
            # Looked at again inside the write lock: another process may have created the
            # schema between the first look and now.
            tables = self._schema_names(conn, "table")
            # The statements are run only when missing, with no IF NOT EXISTS, so that the
            # schema text matches what llm itself writes.
            if "_sqlite_migrations" not in tables:
                conn.execute(_MIGRATIONS_TABLE)
            indexes = self._schema_names(conn, "index")
            if "idx__sqlite_migrations_migration_set_name" not in indexes:
                conn.execute(_MIGRATIONS_INDEX)
            for name, ddl in _LLM_TABLES.items():
                if name not in tables:
                    conn.execute(ddl)
            for name, ddl in _LLM_INDEXES.items():
                if name not in indexes:
                    conn.execute(ddl)
            # Recording llm's migrations stops llm from trying to create the tables again.
            self._record_migrations(conn, LLM_MIGRATION_SET, LLM_MIGRATIONS)
            applied = self._applied_migrations(conn, VIBES_MIGRATION_SET)
            for name, statements in VIBES_MIGRATIONS:
                if name not in applied:
                    for statement in statements:
                        conn.execute(statement)
                    self._record_migrations(conn, VIBES_MIGRATION_SET, (name,))

    @staticmethod
    def _record_migrations(
        conn: sqlite3.Connection, migration_set: str, names: Iterable[str]
    ) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES (?, ?, ?)",
            [(migration_set, name, _now_iso()) for name in names],
        )

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        if self._memory:
            yield  # one connection shared by every thread: not this thread's to limit
            return
        conn = self.conn
        deadline = time.monotonic() + seconds
        stopped: list[bool] = []

        def past_deadline() -> int:
            if time.monotonic() > deadline:
                stopped.append(True)
                return 1  # SQLite stops the statement: "interrupted"
            return 0

        conn.set_progress_handler(past_deadline, 10_000)
        try:
            yield
        except VibesError:
            if stopped:
                raise QueryTimeoutError(
                    f"The query took longer than {seconds:g} s and was stopped"
                ) from None
            raise
        finally:
            conn.set_progress_handler(None, 0)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: committed whole, or rolled back whole (Ctrl-C included)."""
        if self._open_readonly:
            # SQLite would begin the transaction and fail only at the first change.
            raise DatabaseOpenError(f"Cannot write to database {self.location}: opened read-only")
        with self._guard():
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise DatabaseOpenError(
                    _describe(error, f"Cannot write to database {self.location}")
                ) from None
            try:
                yield SQLiteTransaction(conn)
            except sqlite3.Error as error:
                self._rollback(conn)
                raise StorageError(_describe(error, "Database error")) from None
            except BaseException:
                self._rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback(conn)
                raise DatabaseOpenError(
                    _describe(error, f"Cannot write to database {self.location}")
                ) from None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back by itself (a full disk does that); a second
        # ROLLBACK would then replace the real error with "no transaction is active".
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def version(self) -> int:
        # Every change to a vector adds a row to vibes_changes through the triggers, whoever
        # makes it, and AUTOINCREMENT's counter never goes back, even after pruning: so the
        # counter is a version of every vector in the file, the same on every connection.
        row = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'vibes_changes'"
        ).fetchone()
        return int(row[0]) if row else 0

    def _select_in(
        self,
        sql: str,
        values: Sequence[Any],
        *leading: Any,
        trailing: Sequence[Any] = (),
        conn: sqlite3.Connection | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (whose ``{marks}`` is where the IN list goes) for every value,
        in parts small enough for SQLite's limit on parameters; ``leading`` parameters
        come before the list, ``trailing`` ones after it."""
        conn = conn or self.conn
        # Replaced, not formatted: a raw --where condition in the SQL may hold braces.
        head, marks, tail = sql.partition("{marks}")  # the first: a condition follows it
        assert marks, "the SQL has no {marks} for the IN list"
        size = max(_MAX_PARAMS - len(leading) - len(trailing), 100)
        for part in _parts(list(values), size):
            statement = head + ",".join("?" * len(part)) + tail
            yield from conn.execute(statement, (*leading, *part, *trailing))

    # -- collections -------------------------------------------------------------------------

    _COLLECTION_SELECT = """
        SELECT c.id, c.name, c.model, v.dimensions, coalesce(v.distance, 'cosine')
        FROM collections c LEFT JOIN vibes_collections v ON v.collection_id = c.id
    """

    def get_collection(self, name: str, tx: Transaction | None = None) -> CollectionRecord | None:
        conn = _conn(tx) if tx is not None else self.conn
        row = conn.execute(self._COLLECTION_SELECT + " WHERE c.name = ?", (name,)).fetchone()
        return CollectionRecord(*row) if row else None

    def create_collection(
        self, name: str, model_id: str, dimensions: int | None, distance: str = "cosine"
    ) -> CollectionRecord:
        with self.transaction() as tx:
            if self.get_collection(name, tx) is not None:
                raise StorageError(f"Collection {name!r} already exists")
            return self.ensure_collection(tx, name, model_id, dimensions, distance)

    def ensure_collection(
        self,
        tx: Transaction,
        name: str,
        model_id: str,
        dimensions: int | None,
        distance: str = "cosine",
    ) -> CollectionRecord:
        # Inside a write transaction (BEGIN IMMEDIATE), so no other writer can create the
        # same name between this look and the insert.
        conn = _conn(tx)
        existing = self.get_collection(name, tx)
        if existing is not None:
            return existing
        cursor = conn.execute(
            "INSERT INTO collections (name, model) VALUES (?, ?)", (name, model_id)
        )
        conn.execute(
            "INSERT INTO vibes_collections (collection_id, dimensions, distance, created) "
            "VALUES (?, ?, ?, strftime('%s', 'now'))",
            (cursor.lastrowid, dimensions, distance),
        )
        record = self.get_collection(name, tx)
        assert record is not None
        return record

    def set_dimensions(self, tx: Transaction, collection_id: int, dimensions: int) -> None:
        _conn(tx).execute(
            "INSERT INTO vibes_collections (collection_id, dimensions) VALUES (?, ?) "
            "ON CONFLICT (collection_id) DO UPDATE SET dimensions = excluded.dimensions",
            (collection_id, dimensions),
        )

    def sample_dimensions(self, collection_id: int) -> int | None:
        row = self.conn.execute(
            "SELECT length(embedding) FROM embeddings WHERE collection_id = ? LIMIT 1",
            (collection_id,),
        ).fetchone()
        return row[0] // 4 if row and row[0] else None

    def list_collections(self) -> list[CollectionInfo]:
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
            CollectionInfo(
                name, model, count, dimensions or (blob_length // 4 if blob_length else None)
            )
            for name, model, dimensions, count, blob_length in rows
        ]

    def delete_collection(self, collection_id: int) -> None:
        with self.transaction() as tx:
            conn = _conn(tx)
            conn.execute("DELETE FROM embeddings WHERE collection_id = ?", (collection_id,))
            for table in (
                "vibes_collections",
                "vibes_keys",
                "vibes_changes",
                "vibes_log_positions",
                "vibes_indexes",
                "vibes_documents",
                "vibes_chunks",
                "vibes_sources",
                "vibes_fulltext",
                "vibes_clusterings",
                "vibes_clusters",
                "vibes_cluster_items",
                "vibes_related",
                "vibes_similarities",
            ):
                conn.execute(f"DELETE FROM {table} WHERE collection_id = ?", (collection_id,))
            conn.execute(f'DROP TABLE IF EXISTS "{_fulltext_table(collection_id)}"')
            conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # -- items -------------------------------------------------------------------------------

    def count(self, collection_id: int) -> int:
        (count,) = self.conn.execute(
            "SELECT count(*) FROM embeddings WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        return int(count)

    def get_items(self, collection_id: int, ids: Sequence[str]) -> dict[str, StoredItem]:
        rows = self._select_in(
            "SELECT id, content_hash, content, content_blob, metadata FROM embeddings "
            "WHERE collection_id = ? AND id IN ({marks})",
            ids,
            collection_id,
        )
        return {row[0]: _stored_item(row) for row in rows}

    def get_vector(self, collection_id: int, item_id: str) -> np.ndarray | None:
        row = self.conn.execute(
            "SELECT embedding FROM embeddings WHERE collection_id = ? AND id = ?",
            (collection_id, item_id),
        ).fetchone()
        return vector_format.decode_array(row[0]) if row and row[0] is not None else None

    def vectors_by_hash(
        self, collection_id: int, hashes: Sequence[bytes]
    ) -> dict[bytes, np.ndarray]:
        rows = self._select_in(
            "SELECT content_hash, embedding FROM embeddings WHERE collection_id = ? "
            "AND content_hash IN ({marks})",
            hashes,
            collection_id,
        )
        return {digest: vector_format.decode_array(blob) for digest, blob in rows if blob}

    def upsert(self, tx: Transaction, collection_id: int, items: Sequence[ItemWrite]) -> None:
        _conn(tx).executemany(
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
            [
                (
                    collection_id,
                    item.id,
                    vector_format.encode(item.vector),
                    item.content,
                    item.content_blob,
                    item.content_hash,
                    _dump_json(item.metadata, item.id),
                    item.updated,
                )
                for item in items
            ],
        )

    def update_stored(
        self, tx: Transaction, collection_id: int, updates: Sequence[ItemUpdate]
    ) -> None:
        _conn(tx).executemany(
            "UPDATE embeddings SET content = coalesce(?, content), "
            "content_blob = coalesce(?, content_blob), metadata = coalesce(?, metadata), "
            "updated = ? WHERE collection_id = ? AND id = ?",
            [
                (
                    u.content,
                    u.content_blob,
                    _dump_json(u.metadata, u.id),
                    u.updated,
                    collection_id,
                    u.id,
                )
                for u in updates
            ],
        )

    def _delete_ids(self, conn: sqlite3.Connection, collection_id: int, ids: Sequence[str]) -> int:
        deleted = 0
        for part in _parts(list(ids)):
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

    def delete_items(self, tx: Transaction, collection_id: int, ids: Sequence[str]) -> int:
        return self._delete_ids(_conn(tx), collection_id, ids)

    def item_ids(self, collection_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM embeddings WHERE collection_id = ?", (collection_id,)
        )
        return [row[0] for row in rows]

    def load_matrix(
        self,
        collection_id: int,
        dimensions: int | None,
        ids: Sequence[str] | None = None,
        *,
        with_keys: bool = False,
    ) -> VectorMatrix:
        if with_keys:
            select = (
                "SELECT e.id, e.embedding, k.key FROM embeddings e JOIN vibes_keys k "
                "ON k.collection_id = e.collection_id AND k.item_id = e.id "
                "WHERE e.collection_id = ?"
            )
            column = "e.id"
        else:
            select = "SELECT id, embedding FROM embeddings WHERE collection_id = ?"
            column = "id"
        if ids is None:
            rows = self.conn.execute(select, (collection_id,)).fetchall()
        else:
            rows = list(
                self._select_in(select + f" AND {column} IN ({{marks}})", ids, collection_id)
            )
        return _vector_matrix(rows, dimensions, with_keys)

    def iter_items(
        self, collection_id: int, *, with_vectors: bool = False, page_size: int = 10_000
    ) -> Iterator[tuple[list[StoredItem], np.ndarray | None]]:
        columns = "id, content_hash, content, content_blob, metadata" + (
            ", embedding" if with_vectors else ""
        )
        after: str | None = None
        while True:
            # Keyset pages: no cursor stays open between pages, so the caller may write to
            # the database (or another thread use the connection) while iterating.
            try:
                with self._guard():
                    rows = self.conn.execute(
                        f"SELECT {columns} FROM embeddings WHERE collection_id = ? "
                        "AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
                        (collection_id, after, after, page_size),
                    ).fetchall()
            except sqlite3.Error as error:
                raise StorageError(_describe(error, "Database error")) from None
            if not rows:
                return
            items = [_stored_item(row) for row in rows]
            matrix = None
            if with_vectors:
                ids = [item.id for item in items]
                matrix = vector_format.blobs_to_matrix(ids, [row[5] for row in rows], None)
            yield items, matrix
            after = rows[-1][0]

    def matching(
        self, collection_id: int, condition: Filter, keys: Sequence[int] | None = None
    ) -> Candidates:
        try:
            if keys is None:
                sql, params = self._matching_query(collection_id, condition)
                rows = self.conn.execute(sql, params).fetchall()
            else:
                rows = self._matching_among(collection_id, condition, keys)
        except sqlite3.Error as error:
            raise FilterError(f"Invalid filter: {error}") from None
        return Candidates([row[1] for row in rows], [row[0] for row in rows])

    def _matching_among(
        self, collection_id: int, condition: Filter, keys: Sequence[int]
    ) -> list[tuple[int, str]]:
        """(key, id) of the items with ``keys`` that ``condition`` lets through: each
        key looked up by itself, its row checked (no other row is read)."""
        where, params = compile_filter(condition)
        # The condition is written for embeddings' columns: inside EXISTS, its names
        # resolve to that table. The unary + keeps SQLite on the keys (see
        # vectors_for_keys).
        sql = (
            "SELECT k.key, k.item_id FROM vibes_keys k WHERE k.key IN ({marks}) "
            "AND +k.collection_id = ? AND EXISTS (SELECT 1 FROM embeddings WHERE "
            "embeddings.collection_id = k.collection_id AND embeddings.id = k.item_id "
            "AND (" + where + "))"
        )
        found = self._select_in(sql, [int(key) for key in keys], trailing=(collection_id, *params))
        return [(int(key), item_id) for key, item_id in found]

    @staticmethod
    def _matching_query(collection_id: int, condition: Filter) -> tuple[str, list[Any]]:
        """The statement :meth:`matching` runs: (key, id) of the items ``condition``
        lets through."""
        where, params = compile_filter(condition)
        # Saying what the filter implies lets SQLite read the metadata index (which
        # holds only items with metadata) instead of every row of the table.
        with_metadata = ' AND "metadata" IS NOT NULL' if condition.needs_metadata else ""
        sql = (
            "SELECT (SELECT key FROM vibes_keys k WHERE k.collection_id = "
            "embeddings.collection_id AND k.item_id = embeddings.id), id FROM embeddings "
            f"WHERE collection_id = ?{with_metadata} AND ({where})"
        )
        return sql, [collection_id, *params]

    # -- chunked documents ----------------------------------------------------------------

    def document(self, collection_id: int, document_id: str) -> DocumentRecord | None:
        row = self.conn.execute(
            "SELECT document_id, content_hash, chunker, settings, metadata, stored, chunk_count "
            "FROM vibes_documents WHERE collection_id = ? AND document_id = ?",
            (collection_id, document_id),
        ).fetchone()
        if row is None:
            return None
        return DocumentRecord(row[0], row[1], row[2], row[3], _load_json(row[4]), row[5], row[6])

    def present_chunks(self, collection_id: int, document_id: str) -> int:
        (count,) = self.conn.execute(
            "SELECT count(*) FROM vibes_chunks c JOIN embeddings e "
            "ON e.collection_id = c.collection_id AND e.id = c.id "
            "WHERE c.collection_id = ? AND c.document_id = ?",
            (collection_id, document_id),
        ).fetchone()
        return int(count)

    def document_ids(self, collection_id: int) -> list[str]:
        # With the documents whose chunks a failed or killed run began to write: their
        # record comes with their last chunk, yet they must be deletable and prunable.
        rows = self.conn.execute(
            "SELECT document_id FROM vibes_documents WHERE collection_id = ? "
            "UNION SELECT document_id FROM vibes_chunks WHERE collection_id = ?",
            (collection_id, collection_id),
        )
        return [row[0] for row in rows]

    def chunk_ids(self, collection_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM vibes_chunks WHERE collection_id = ?", (collection_id,)
        )
        return [row[0] for row in rows]

    def upsert_chunks(
        self, tx: Transaction, collection_id: int, chunks: Sequence[ChunkRecord]
    ) -> None:
        _conn(tx).executemany(
            "INSERT OR REPLACE INTO vibes_chunks (collection_id, id, document_id, chunk_index, "
            "start_offset, end_offset, start_line, end_line, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (collection_id, c.id, c.document_id, c.index, c.start_offset, c.end_offset)
                + (c.start_line, c.end_line, c.context)
                for c in chunks
            ],
        )

    def finish_document(self, tx: Transaction, collection_id: int, record: DocumentRecord) -> int:
        conn = _conn(tx)
        conn.execute(
            "INSERT OR REPLACE INTO vibes_documents (collection_id, document_id, content_hash, "
            "chunker, settings, metadata, stored, chunk_count, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s', 'now'))",
            (
                collection_id,
                record.document_id,
                record.content_hash,
                record.chunker,
                record.settings,
                _dump_json(record.metadata, record.document_id),
                record.stored,
                record.chunk_count,
            ),
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
        self._delete_ids(conn, collection_id, stale)
        return len(stale)

    def delete_documents(
        self, tx: Transaction, collection_id: int, document_ids: Iterable[str]
    ) -> int:
        conn = _conn(tx)
        deleted = 0
        for document_id in document_ids:
            deleted += self._delete_chunks(conn, collection_id, document_id)
            for table, column in (("vibes_documents", "document_id"), ("vibes_sources", "item_id")):
                conn.execute(
                    f"DELETE FROM {table} WHERE collection_id = ? AND {column} = ?",
                    (collection_id, document_id),
                )
        return deleted

    def chunk_records(self, collection_id: int, ids: Sequence[str]) -> dict[str, ChunkRecord]:
        rows = self._select_in(
            "SELECT id, document_id, chunk_index, start_offset, end_offset, start_line, "
            "end_line, context FROM vibes_chunks WHERE collection_id = ? AND id IN ({marks})",
            ids,
            collection_id,
        )
        return {row[0]: ChunkRecord(*row) for row in rows}

    def document_chunks(
        self, collection_id: int, document_id: str, first: int, last: int
    ) -> list[ChunkText]:
        rows = self.conn.execute(
            "SELECT c.id, c.chunk_index, c.start_line, c.end_line, e.content "
            "FROM vibes_chunks c LEFT JOIN embeddings e "
            "ON e.collection_id = c.collection_id AND e.id = c.id "
            "WHERE c.collection_id = ? AND c.document_id = ? AND c.chunk_index BETWEEN ? AND ? "
            "ORDER BY c.chunk_index",
            (collection_id, document_id, first, last),
        ).fetchall()
        return [ChunkText(*row) for row in rows]

    # -- sources -----------------------------------------------------------------------------

    def sources(self, collection_id: int, ids: Sequence[str]) -> dict[str, str]:
        rows = self._select_in(
            "SELECT item_id, source FROM vibes_sources WHERE collection_id = ? "
            "AND item_id IN ({marks})",
            ids,
            collection_id,
        )
        return dict(rows)

    def set_sources(
        self, tx: Transaction, collection_id: int, sources: dict[str, str | None]
    ) -> None:
        conn = _conn(tx)
        conn.executemany(
            "INSERT OR REPLACE INTO vibes_sources (collection_id, item_id, source) "
            "VALUES (?, ?, ?)",
            [(collection_id, i, s) for i, s in sources.items() if s is not None],
        )
        conn.executemany(
            "DELETE FROM vibes_sources WHERE collection_id = ? AND item_id = ?",
            [(collection_id, i) for i, s in sources.items() if s is None],
        )

    def sourced_ids(self, collection_id: int, source: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT item_id FROM vibes_sources WHERE collection_id = ? AND source = ?",
            (collection_id, source),
        )
        return [row[0] for row in rows]

    # -- change log --------------------------------------------------------------------------

    def last_change(self, collection_id: int) -> int:
        (seq,) = self.conn.execute(
            "SELECT max(seq) FROM vibes_changes WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        return int(seq or 0)

    def changes_since(self, collection_id: int, seq: int) -> tuple[int, list[str]]:
        rows = self.conn.execute(
            "SELECT seq, item_id FROM vibes_changes WHERE collection_id = ? AND seq > ? "
            "ORDER BY seq",
            (collection_id, seq),
        ).fetchall()
        if not rows:
            return seq, []
        return rows[-1][0], list(dict.fromkeys(row[1] for row in rows))

    def log_position(self, collection_id: int, consumer: str) -> int | None:
        row = self.conn.execute(
            "SELECT seq FROM vibes_log_positions WHERE collection_id = ? AND consumer = ?",
            (collection_id, consumer),
        ).fetchone()
        return int(row[0]) if row else None

    def advance_log(self, tx: Transaction, collection_id: int, consumer: str, seq: int) -> None:
        conn = _conn(tx)
        conn.execute(
            "INSERT INTO vibes_log_positions (collection_id, consumer, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (collection_id, consumer) DO UPDATE SET seq = excluded.seq",
            (collection_id, consumer, seq),
        )
        self._prune(conn, collection_id)

    def release_log(self, tx: Transaction, collection_id: int, consumer: str) -> None:
        conn = _conn(tx)
        conn.execute(
            "DELETE FROM vibes_log_positions WHERE collection_id = ? AND consumer = ?",
            (collection_id, consumer),
        )
        self._prune(conn, collection_id)

    def prune_log(self, tx: Transaction, collection_id: int) -> None:
        self._prune(_conn(tx), collection_id)

    @staticmethod
    def _prune(conn: sqlite3.Connection, collection_id: int) -> None:
        (lowest,) = conn.execute(
            "SELECT min(seq) FROM vibes_log_positions WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        if lowest is None:  # nobody reads this collection's log
            conn.execute("DELETE FROM vibes_changes WHERE collection_id = ?", (collection_id,))
        else:
            conn.execute(
                "DELETE FROM vibes_changes WHERE collection_id = ? AND seq <= ?",
                (collection_id, lowest),
            )

    # -- stable keys and index state -------------------------------------------------------

    def ensure_keys(self, tx: Transaction, collection_id: int) -> None:
        _conn(tx).execute(
            "INSERT OR IGNORE INTO vibes_keys (collection_id, item_id) "
            "SELECT collection_id, id FROM embeddings WHERE collection_id = ?",
            (collection_id,),
        )

    def keys_for_ids(self, collection_id: int, ids: Sequence[str]) -> dict[str, int]:
        rows = self._select_in(
            "SELECT item_id, key FROM vibes_keys WHERE collection_id = ? AND item_id IN ({marks})",
            ids,
            collection_id,
        )
        return {item_id: key for item_id, key in rows}

    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]:
        rows = self._select_in(
            "SELECT key, item_id FROM vibes_keys WHERE key IN ({marks})", [int(k) for k in keys]
        )
        return {key: item_id for key, item_id in rows}

    def vectors_for_keys(
        self, collection_id: int, dimensions: int | None, keys: Sequence[int]
    ) -> VectorMatrix:
        # The unary + keeps SQLite from reading the keys through the (collection_id,
        # item_id) index, every key of the collection, instead of by key: 18 ms against
        # 0.1 ms for 30 keys at 100,000 items.
        rows = list(
            self._select_in(
                "SELECT e.id, e.embedding, k.key FROM vibes_keys k JOIN embeddings e "
                "ON e.collection_id = k.collection_id AND e.id = k.item_id "
                "WHERE +k.collection_id = ? AND k.key IN ({marks})",
                [int(k) for k in keys],
                collection_id,
            )
        )
        return _vector_matrix(rows, dimensions, with_keys=True)

    def index_state(self, collection_id: int) -> IndexState | None:
        row = self.conn.execute(
            "SELECT collection_id, kind, file, seq, size, dimensions, model, distance, params, "
            "built, seal FROM vibes_indexes WHERE collection_id = ?",
            (collection_id,),
        ).fetchone()
        return IndexState(*row) if row else None

    def save_index_state(self, tx: Transaction, state: IndexState, replacing: str | None) -> bool:
        conn = _conn(tx)
        current = conn.execute(
            "SELECT file FROM vibes_indexes WHERE collection_id = ?", (state.collection_id,)
        ).fetchone()
        if current is not None and current[0] != replacing:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO vibes_indexes (collection_id, kind, file, seq, size, "
            "dimensions, model, distance, params, built, seal) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                state.seal,
            ),
        )
        return True

    # -- full-text index ------------------------------------------------------------------

    def fulltext_support(self) -> str | None:
        if not hasattr(self, "_fulltext_support"):
            try:
                self.conn.execute("CREATE VIRTUAL TABLE temp.vibes_fts5_probe USING fts5(x)")
                self.conn.execute("DROP TABLE temp.vibes_fts5_probe")
                self._fulltext_support: str | None = None
            except sqlite3.OperationalError as error:
                self._fulltext_support = (
                    f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5 ({error})"
                )
        return self._fulltext_support

    def fulltext_state(self, collection_id: int) -> FullTextState | None:
        row = self.conn.execute(
            "SELECT tokenizer, keeps_text, created FROM vibes_fulltext WHERE collection_id = ?",
            (collection_id,),
        ).fetchone()
        if row is None:
            return None
        present = (
            self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (_fulltext_table(collection_id),)
            ).fetchone()
            is not None
        )
        return FullTextState(collection_id, row[0], bool(row[1]), row[2], present)

    def create_fulltext(self, tx: Transaction, collection_id: int, tokenizer: str) -> None:
        problem = self.fulltext_support()
        if problem is not None:
            raise StorageError(f"Cannot create a full-text index: {problem}")
        conn = _conn(tx)
        table = _fulltext_table(collection_id)
        keeps_text = sqlite3.sqlite_version_info < _CONTENTLESS_DELETE
        # Without a copy of the text when SQLite can delete without one: the index then
        # holds no more of the text than its words, whether or not the content is stored.
        options = "" if keeps_text else ", content='', contentless_delete=1"
        quoted = tokenizer.replace("'", "''")
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        try:
            conn.execute(
                f"CREATE VIRTUAL TABLE \"{table}\" USING fts5(text, tokenize='{quoted}'{options})"
            )
        except sqlite3.OperationalError as error:
            raise InputError(f"Cannot use the full-text tokenizer {tokenizer!r}: {error}") from None
        conn.execute(
            "INSERT OR REPLACE INTO vibes_fulltext (collection_id, tokenizer, keeps_text, created) "
            "VALUES (?, ?, ?, strftime('%s', 'now'))",
            (collection_id, tokenizer, int(keeps_text)),
        )

    def drop_fulltext(self, tx: Transaction, collection_id: int) -> None:
        conn = _conn(tx)
        conn.execute(f'DROP TABLE IF EXISTS "{_fulltext_table(collection_id)}"')
        conn.execute("DELETE FROM vibes_fulltext WHERE collection_id = ?", (collection_id,))

    def write_fulltext(
        self, tx: Transaction, collection_id: int, texts: dict[str, str | None]
    ) -> None:
        if not texts:
            return
        conn = _conn(tx)
        table = _fulltext_table(collection_id)
        ids = list(texts)
        # Items written before vibes' triggers existed have no key yet.
        conn.executemany(
            "INSERT OR IGNORE INTO vibes_keys (collection_id, item_id) VALUES (?, ?)",
            [(collection_id, item_id) for item_id in ids],
        )
        keys = dict(
            self._select_in(
                "SELECT item_id, key FROM vibes_keys WHERE collection_id = ? "
                "AND item_id IN ({marks})",
                ids,
                collection_id,
                conn=conn,
            )
        )
        for part in _parts([keys[item_id] for item_id in ids]):
            marks = ", ".join("?" * len(part))
            conn.execute(f'DELETE FROM "{table}" WHERE rowid IN ({marks})', tuple(part))
        conn.executemany(
            f'INSERT INTO "{table}" (rowid, text) VALUES (?, ?)',
            [(keys[item_id], text) for item_id, text in texts.items() if text],
        )

    def search_fulltext(
        self,
        collection_id: int,
        terms: Sequence[str],
        k: int,
        *,
        syntax: str | None = None,
        candidates: Candidates | None = None,
        budget: int | None = None,
    ) -> list[tuple[str, float]]:
        from ..search.text import fts5_expression  # any input, quoted: never a syntax error

        if syntax is None and budget is not None and len(terms) > 1:
            terms = self._within_budget(collection_id, terms, budget)
        expression = syntax if syntax is not None else fts5_expression(terms)
        if not expression or k <= 0:
            return []
        table = _fulltext_table(collection_id)
        # FTS5 scores every match to sort by rank, so a limit saves only the rows passed
        # back; with candidates, matches stream in rank order until k of them pass.
        limit = "" if candidates is not None else f"LIMIT {int(k)}"
        sql = (
            f'SELECT f.rowid, -f.rank FROM "{table}" f WHERE f.text MATCH ? ORDER BY f.rank {limit}'
        )
        allowed = None if candidates is None else {key for key in candidates.keys}
        found: list[tuple[int, float]] = []
        try:
            for key, score in self.conn.execute(sql, (expression,)):
                if allowed is None or key in allowed:
                    found.append((key, float(score)))
                    if len(found) >= k:
                        break
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                raise StorageError(
                    f"The full-text index of collection {collection_id} is missing"
                ) from None
            if syntax is not None:
                raise InputError(f"Invalid full-text query {syntax!r}: {error}") from None
            raise
        names = self.ids_for_keys([key for key, _ in found])
        return [(names[key], score) for key, score in found if key in names]

    def _within_budget(self, collection_id: int, terms: Sequence[str], budget: int) -> list[str]:
        """The query's terms from the rarest on, while the documents holding them add up
        to at most ``budget`` (BM25 over OR reads and scores about that many entries);
        the rarest stays whatever it costs. A word in most documents adds almost nothing
        to a BM25 score yet costs the most: this bounds a query's time by the budget, not
        by the collection's size. Terms are counted as the index's own tokenizer cuts
        them, through scratch tables in this connection's TEMP schema (nothing is
        written to the database)."""
        conn = self.conn
        table = _fulltext_table(collection_id)
        state = self.fulltext_state(collection_id)
        if state is None:
            return list(terms)
        scratch = f"{table}_query_{zlib.crc32(state.tokenizer.encode()):08x}"
        quoted = state.tokenizer.replace("'", "''")
        conn.execute(
            f'CREATE VIRTUAL TABLE IF NOT EXISTS temp."{scratch}" '
            f"USING fts5(x, tokenize='{quoted}')"
        )
        conn.execute(
            f'CREATE VIRTUAL TABLE IF NOT EXISTS temp."{scratch}_tokens" '
            f"USING fts5vocab(temp, '{scratch}', instance)"
        )
        conn.execute(
            f'CREATE VIRTUAL TABLE IF NOT EXISTS temp."{table}_vocab" '
            f"USING fts5vocab(main, '{table}', row)"
        )
        conn.execute(f'DELETE FROM temp."{scratch}"')
        conn.executemany(
            f'INSERT INTO temp."{scratch}" (rowid, x) VALUES (?, ?)', list(enumerate(terms))
        )
        tokens: dict[int, set[str]] = {}
        for row, token in conn.execute(f'SELECT doc, term FROM temp."{scratch}_tokens"'):
            tokens.setdefault(row, set()).add(token)
        every = sorted(set().union(*tokens.values())) if tokens else []
        counts = dict(
            self._select_in(
                f'SELECT term, doc FROM temp."{table}_vocab" WHERE term IN ({{marks}})', every
            )
        )
        # A term costs what its rarest token costs (a phrase of several tokens).
        costs = [
            min((counts.get(token, 0) for token in tokens.get(i, ())), default=0)
            for i in range(len(terms))
        ]
        kept: list[int] = []
        spent = 0
        for cost, index in sorted((c, i) for i, c in enumerate(costs) if c > 0):
            if kept and spent + cost > budget:
                break
            kept.append(index)
            spent += cost
        return [terms[i] for i in sorted(kept)]

    def fulltext_count(self, collection_id: int) -> int:
        (count,) = self.conn.execute(
            f'SELECT count(*) FROM "{_fulltext_table(collection_id)}"'
        ).fetchone()
        return int(count)

    def fulltext_missing(self, collection_id: int, ids: Sequence[str]) -> list[str]:
        table = _fulltext_table(collection_id)
        present = {
            row[0]
            for row in self._select_in(
                f'SELECT k.item_id FROM vibes_keys k JOIN "{table}" f ON f.rowid = k.key '
                "WHERE k.collection_id = ? AND k.item_id IN ({marks})",
                list(ids),
                collection_id,
            )
        }
        return [item_id for item_id in ids if item_id not in present]

    # -- analysis: clusters ------------------------------------------------------------------

    def save_clustering(
        self,
        tx: Transaction,
        collection_id: int,
        settings: str | None,
        clusters: Sequence[ClusterRecord],
        assignments: dict[str, int],
    ) -> None:
        conn = _conn(tx)
        self._drop_clustering(conn, collection_id)
        conn.execute(
            "INSERT INTO vibes_clusterings (collection_id, settings, created) VALUES (?, ?, ?)",
            (collection_id, settings, int(time.time())),
        )
        conn.executemany(
            "INSERT INTO vibes_clusters (collection_id, cluster, name, summary, size) "
            "VALUES (?, ?, ?, ?, ?)",
            [(collection_id, c.cluster, c.name, c.summary, c.size) for c in clusters],
        )
        conn.executemany(
            "INSERT INTO vibes_cluster_items (collection_id, item_id, cluster) VALUES (?, ?, ?)",
            [(collection_id, item_id, cluster) for item_id, cluster in assignments.items()],
        )

    def clustering(self, collection_id: int) -> Clustering | None:
        row = self.conn.execute(
            "SELECT settings, created FROM vibes_clusterings WHERE collection_id = ?",
            (collection_id,),
        ).fetchone()
        if row is None:
            return None
        clusters = [
            ClusterRecord(*found)
            for found in self.conn.execute(
                "SELECT cluster, name, summary, size FROM vibes_clusters "
                "WHERE collection_id = ? ORDER BY cluster",
                (collection_id,),
            )
        ]
        return Clustering(collection_id, row[0], row[1], clusters)

    def cluster_assignments(self, collection_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT c.item_id, c.cluster FROM vibes_cluster_items c JOIN embeddings e "
            "ON e.collection_id = c.collection_id AND e.id = c.item_id "
            "WHERE c.collection_id = ?",
            (collection_id,),
        )
        return {item_id: int(cluster) for item_id, cluster in rows}

    def drop_clustering(self, tx: Transaction, collection_id: int) -> None:
        self._drop_clustering(_conn(tx), collection_id)

    @staticmethod
    def _drop_clustering(conn: sqlite3.Connection, collection_id: int) -> None:
        for table in ("vibes_clusterings", "vibes_clusters", "vibes_cluster_items"):
            conn.execute(f"DELETE FROM {table} WHERE collection_id = ?", (collection_id,))

    # -- analysis: related items -------------------------------------------------------------

    def related_state(self, collection_id: int) -> RelatedState | None:
        row = self.conn.execute(
            "SELECT n, documents, built FROM vibes_related WHERE collection_id = ?",
            (collection_id,),
        ).fetchone()
        if row is None:
            return None
        return RelatedState(collection_id, int(row[0]), bool(row[1]), row[2])

    def save_related_state(self, tx: Transaction, state: RelatedState) -> None:
        _conn(tx).execute(
            "INSERT OR REPLACE INTO vibes_related (collection_id, n, documents, built) "
            "VALUES (?, ?, ?, ?)",
            (state.collection_id, state.n, int(state.documents), state.built),
        )

    def write_related(
        self, tx: Transaction, collection_id: int, neighbours: dict[str, list[tuple[str, float]]]
    ) -> None:
        conn = _conn(tx)
        self.delete_related(tx, collection_id, list(neighbours))
        conn.executemany(
            "INSERT INTO vibes_similarities (collection_id, id, other_id, score, rank) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                (collection_id, item_id, other_id, float(score), rank)
                for item_id, pairs in neighbours.items()
                for rank, (other_id, score) in enumerate(pairs)
            ),
        )

    def delete_related(self, tx: Transaction, collection_id: int, ids: Sequence[str]) -> None:
        conn = _conn(tx)
        for part in _parts(list(ids)):
            conn.execute(
                "DELETE FROM vibes_similarities WHERE collection_id = ? "
                f"AND id IN ({','.join('?' * len(part))})",
                (collection_id, *part),
            )

    def drop_related(self, tx: Transaction, collection_id: int) -> None:
        conn = _conn(tx)
        for table in ("vibes_related", "vibes_similarities"):
            conn.execute(f"DELETE FROM {table} WHERE collection_id = ?", (collection_id,))

    def related(self, collection_id: int, ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        found: dict[str, list[tuple[str, float]]] = {}
        rows = self._select_in(
            "SELECT id, other_id, score FROM vibes_similarities "
            "WHERE collection_id = ? AND id IN ({marks}) ORDER BY id, rank",
            list(ids),
            collection_id,
        )
        for item_id, other_id, score in rows:
            found.setdefault(item_id, []).append((other_id, float(score)))
        return found

    def related_at(self, collection_id: int, rank: int) -> dict[str, float]:
        rows = self.conn.execute(
            "SELECT id, score FROM vibes_similarities WHERE collection_id = ? AND rank = ?",
            (collection_id, rank),
        )
        return dict(rows)

    def related_pointing_to(self, collection_id: int, ids: Sequence[str]) -> set[str]:
        return {
            row[0]
            for row in self._select_in(
                "SELECT DISTINCT id FROM vibes_similarities "
                "WHERE collection_id = ? AND other_id IN ({marks})",
                list(ids),
                collection_id,
            )
        }

    # -- rows for ingestion ---------------------------------------------------------------------

    def read_query(
        self, query: str, attach: Sequence[tuple[str, str]] = ()
    ) -> tuple[Iterator[dict[str, Any]], int | None]:
        if self._memory:
            raise InputError("--sql needs a database file, not an in-memory database")
        conn = sqlite3.connect(readonly_uri(self.location), uri=True)
        try:
            for alias, path in attach:
                if not Path(path).is_file():
                    raise InputError(f"Cannot attach {path}: no such file")
                conn.execute("ATTACH DATABASE ? AS ?", (str(Path(path).resolve()), alias))
            cursor = conn.execute(query)
        except sqlite3.Error as error:
            conn.close()
            raise InputError(f"SQL query failed: {error}") from None
        except UnicodeEncodeError:
            conn.close()
            raise InputError("The SQL query holds bytes that are not valid UTF-8") from None
        except BaseException:
            conn.close()
            raise
        if cursor.description is None:
            conn.close()
            raise InputError("The SQL query returns no rows (is it a SELECT?)")
        columns = [column[0] for column in cursor.description]
        try:
            (count,) = conn.execute(f"SELECT count(*) FROM ({query})").fetchone()
        except (sqlite3.Error, sqlite3.Warning):
            count = None  # (a query ending in ';' or a comment cannot be wrapped)

        def rows() -> Iterator[dict[str, Any]]:
            try:
                for values in cursor:
                    yield dict(zip(columns, values))
            except sqlite3.Error as error:
                raise InputError(f"SQL query failed: {error}") from None
            finally:
                conn.close()

        return rows(), count


def _fulltext_table(collection_id: int) -> str:
    return f"vibes_fts_{int(collection_id)}"


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a store method under the store's guard, its sqlite3 errors mapped to vibes'."""

    @functools.wraps(method)
    def guarded(self: SQLiteStore, *args: Any, **kwargs: Any) -> _T:
        with self._guard():
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as error:
                raise StorageError(_describe(error, "Database error")) from None
            except UnicodeEncodeError:
                # Text holding lone surrogates (undecodable bytes in a shell argument).
                raise InputError(
                    "Text given holds bytes that are not valid UTF-8; it cannot be stored "
                    "or searched for"
                ) from None
            except OverflowError as error:
                raise InputError(f"A number is too large for the database: {error}") from None

    return guarded


# Every read and write of the interface (not those that manage their own connections or
# errors) goes through _guarded: backend errors never escape this module.
for _name in sorted(Store.__abstractmethods__ | {"ensure_keys"}):
    if _name not in {"transaction", "close", "sidecar_directory", "iter_items", "read_query"}:
        setattr(SQLiteStore, _name, _guarded(getattr(SQLiteStore, _name)))

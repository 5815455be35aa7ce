"""vibes in SQL: functions any ``sqlite3`` connection can use once :func:`register` ran.

- ``llm_embed(model, text)``: the vector of ``text`` as a blob (little-endian float32, the
  format of ``llm``'s ``embeddings`` table), as datasette-llm-embed names it;
- ``llm_embed_cosine(a, b)``: the cosine similarity of two such blobs;
- ``llm_embed_decode(blob)``: a blob as a JSON array of numbers;
- ``vibes_similar(collection, query_or_id[, n])``: the ``n`` (default 10) best hits as a
  JSON array, each what ``vibes similar`` prints; ``query_or_id`` is an item's id when
  the collection has one, else a text to embed. Join them to any table with
  ``json_each``;
- ``vibes_mean(blob)``: an aggregate, the mean of the vectors of a group, as a blob.

Errors are SQL errors: a function that cannot answer raises, and the statement fails.
Python's ``sqlite3`` reports every such failure as "user-defined function raised
exception"; :func:`last_error` says what it was.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from .errors import VibesError
from .vectors import decode_array, encode

if TYPE_CHECKING:
    from .database import Database

__all__ = ["last_error", "register"]

_errors = threading.local()


def last_error() -> str | None:
    """The message of the last error a vibes SQL function raised in this thread, or None."""
    return getattr(_errors, "message", None)


def _reported(function: Any) -> Any:
    """Wrap ``function`` so that its error is kept for :func:`last_error` (sqlite3 shows
    only a generic message) and re-raised, failing the statement."""

    def wrapper(*args: Any) -> Any:
        _errors.message = None
        try:
            return function(*args)
        except Exception as error:
            _errors.message = f"{function.__name__}: {error}"
            raise

    wrapper.__name__ = function.__name__
    return wrapper


def _blob(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes) or not value or len(value) % 4:
        raise VibesError(f"{name} must be a vector blob (float32), not {type(value).__name__}")
    return value


def llm_embed(model: str, text: str) -> bytes:
    """The vector of ``text`` by ``model`` (an id or alias), encoded as a blob."""
    from .models import get_model

    if not isinstance(model, str) or not isinstance(text, (str, bytes)):
        raise VibesError("llm_embed(model, text) takes a model name and a text")
    return encode(get_model(model).embed(text))


def llm_embed_cosine(a: bytes, b: bytes) -> float:
    """The cosine similarity of two vector blobs of the same length."""
    import numpy as np

    first = decode_array(_blob(a, "a")).astype(np.float64)
    second = decode_array(_blob(b, "b")).astype(np.float64)
    if len(first) != len(second):
        raise VibesError(f"vectors of {len(first)} and {len(second)} numbers cannot be compared")
    norms = float(np.linalg.norm(first) * np.linalg.norm(second))
    return float(first @ second) / norms if norms else 0.0


def llm_embed_decode(blob: bytes) -> str:
    """A vector blob as a JSON array of numbers."""
    return json.dumps(decode_array(_blob(blob, "blob")).tolist())


class _Mean:
    """The ``vibes_mean`` aggregate: sums the vectors of a group, then divides."""

    def __init__(self) -> None:
        self.total: Any = None  # a float64 array once the first vector is seen
        self.count = 0
        self.error: str | None = None

    def step(self, value: Any) -> None:
        if value is None or self.error:
            return  # NULLs are skipped, as avg() skips them
        try:
            vector = decode_array(_blob(value, "vibes_mean's argument"))
        except VibesError as error:
            self.error = str(error)
            return
        if self.total is None:
            self.total = vector.astype("float64")
        elif len(vector) != len(self.total):
            self.error = f"vectors of {len(self.total)} and {len(vector)} numbers in one group"
            return
        else:
            self.total += vector
        self.count += 1

    def finalize(self) -> bytes | None:
        if self.error:
            _errors.message = f"vibes_mean: {self.error}"
            raise VibesError(self.error)
        if self.total is None:
            return None
        return encode((self.total / self.count).astype("<f4"))


def _database_of(conn: sqlite3.Connection) -> str:
    for _, name, path in conn.execute("pragma database_list"):
        if name == "main":
            if not path:
                raise VibesError("vibes_similar needs a database file, not an in-memory one")
            return str(path)
    raise VibesError("no main database on this connection")


def register(
    conn: sqlite3.Connection, database: Database | None = None, *, readonly: bool = False
) -> None:
    """Add vibes' SQL functions to ``conn``. ``vibes_similar`` searches the collections of
    ``database`` (default: the file ``conn`` has open, opened read-only when
    ``readonly``)."""
    opened: list[Database] = [database] if database is not None else []
    lock = threading.Lock()

    def vibes_database() -> Database:
        with lock:
            if not opened:
                from .database import Database

                opened.append(Database(_database_of(conn), create=False, readonly=readonly))
            return opened[0]

    def vibes_similar(collection: str, query_or_id: Any, n: Any = 10) -> str:
        if not isinstance(collection, str) or not isinstance(query_or_id, (str, bytes)):
            raise VibesError("vibes_similar(collection, query_or_id, n) takes names and a text")
        if type(n) is not int or not 1 <= n <= 10_000:
            raise VibesError(f"n must be a whole number from 1 to 10000, not {n!r}")
        target = vibes_database().collection(collection, create=False)
        if isinstance(query_or_id, str) and target.get(query_or_id) is not None:
            found = target.similar_by_id(query_or_id, n)
        else:
            found = target.similar(query_or_id, n)
        return json.dumps([match.to_dict() for match in found], ensure_ascii=False)

    functions: list[tuple[str, int, Any]] = [
        ("llm_embed", 2, llm_embed),
        ("llm_embed_cosine", 2, llm_embed_cosine),
        ("llm_embed_decode", 1, llm_embed_decode),
        ("vibes_similar", 2, vibes_similar),
        ("vibes_similar", 3, vibes_similar),
    ]
    for name, arguments, function in functions:
        conn.create_function(name, arguments, _reported(function))
    conn.create_aggregate("vibes_mean", 1, _Mean)  # type: ignore[arg-type]  # typeshed: int only

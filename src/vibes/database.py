"""The entry point of the Python API: a database holding collections."""

from __future__ import annotations

from pathlib import Path

from .collection import Collection
from .config import default_database_path
from .errors import DatabaseOpenError, ModelMismatchError, UnknownCollectionError, VibesError
from .index.fulltext import FullText
from .index.manager import IndexManager
from .models import EmbeddingModel, get_model, same_model
from .search import Searcher
from .store import CollectionInfo, CollectionRecord, Store, is_server_url, open_store
from .writing import NOT_CREATED

__all__ = ["CollectionInfo", "Database"]


def _exists(path: str | Path) -> bool:
    text = str(path)
    return text == ":memory:" or text.startswith("file:") or Path(text).exists()


class Database:
    """A vibes database: one SQLite file (readable by ``llm`` too), or a server URL.

    ``Database()`` opens the default database (``$VIBES_DB``, else ``embeddings.db`` in
    the user data directory); ``Database("docs.db")`` opens or creates that file. One
    ``Database`` may be used from many threads at once. ``readonly=True`` opens an
    existing file so that nothing can change it (a web server's searches, say): searches
    work, writes fail with :class:`DatabaseOpenError`.
    """

    def __init__(
        self, path: str | Path | None = None, *, create: bool = True, readonly: bool = False
    ) -> None:
        default = path is None
        if path is None:
            path = default_database_path()
        if (readonly or not create) and not is_server_url(path) and not _exists(path):
            where = "No vibes database yet at" if default else "No database at"
            raise DatabaseOpenError(
                f"{where} {path}" + (": embed something first" if default else "")
            )
        if default and not readonly and not is_server_url(path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        #: The storage backend.
        self.store: Store = open_store(path, readonly=readonly, create=create)
        #: The approximate indexes of this database's collections.
        self.indexes = IndexManager(self.store)
        #: The full-text indexes of this database's collections.
        self.fulltext = FullText(self.store)
        #: The search pipeline, with its cache of vectors.
        self.searcher = Searcher(self.store, self.indexes, self.fulltext)

    @property
    def path(self) -> str:
        """Where the database is, as given (a file path, or a URL)."""
        return self.store.location

    @property
    def label(self) -> str:
        """Where the database is, for messages (a server URL without its password)."""
        return self.store.describe()

    def __repr__(self) -> str:
        return f"<Database {self.label!r}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and forget cached vectors and indexes."""
        self.searcher.forget()
        self.indexes.forget_all()
        self.store.close()

    def collection(
        self,
        name: str,
        model: str | EmbeddingModel | None = None,
        *,
        distance: str | None = None,
        create: bool = True,
    ) -> Collection:
        """The collection called ``name``, created with ``model`` if it does not exist.

        ``model`` is a model id, an alias or an :class:`EmbeddingModel`; None means the
        collection's own model, or the default model for a new collection. Naming a model
        other than an existing collection's raises :class:`ModelMismatchError`.
        ``distance`` (``cosine``, the default, ``dot`` or ``euclidean``) is chosen when the
        collection is created and used by every search.
        """
        from .index.exact import check_distance

        if not name:
            raise VibesError("A collection needs a name")
        if distance is not None:
            check_distance(distance)
        record = self.store.get_collection(name)
        if record is not None:
            if distance is not None and distance != record.distance:
                raise VibesError(
                    f"Collection {name!r} uses {record.distance} distance, not {distance}"
                )
            model_object = None
            if isinstance(model, EmbeddingModel):
                model_object = model
                model_id = model.model_id
            elif model is not None and model != record.model:
                model_object = get_model(model)
                model_id = model_object.model_id
            else:
                model_id = record.model
            if not same_model(record.model, model_id):
                raise ModelMismatchError(
                    f"Collection {name!r} uses model {record.model}, not {model_id}"
                )
            return Collection(self, record, model_object)
        if not create:
            raise UnknownCollectionError(
                f"Collection {name!r} does not exist in {self.label} "
                "(run 'vibes collections' to list them)"
            )
        model_object = model if isinstance(model, EmbeddingModel) else get_model(model)
        # Not created yet: the first write creates it, in the transaction of its first
        # batch, so that a failed first write leaves no empty collection behind.
        record = CollectionRecord(
            NOT_CREATED, name, model_object.model_id, model_object.dimensions, distance or "cosine"
        )
        return Collection(self, record, model_object)

    def has_collection(self, name: str) -> bool:
        """Whether a collection called ``name`` exists."""
        return self.store.get_collection(name) is not None

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its model, item count and dimensions, by name."""
        return self.store.list_collections()

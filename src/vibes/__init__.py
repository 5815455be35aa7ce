"""vibes: embeddings of your own content, stored in SQLite and searched by meaning.

>>> import vibes
>>> db = vibes.Database("docs.db")
>>> docs = db.collection("docs", model="minilm")
>>> docs.embed("1", "SQLite backup tools", store=True)
>>> docs.similar("how do I back up a database", n=3)
"""

from .chunking import Chunk, chunk
from .collection import Collection
from .copying import CopyStats, copy_collection
from .database import CollectionInfo, Database
from .errors import (
    DatabaseOpenError,
    DimensionMismatchError,
    FilterError,
    InputError,
    ItemNotFoundError,
    ModelMismatchError,
    SettingsError,
    StorageError,
    UnknownCollectionError,
    UnknownModelError,
    VibesError,
)
from .filters import Filter, build_filter
from .hookspecs import hookimpl
from .items import DocumentMatch, EmbedStats, Item, Match, Query, SearchResults
from .models import EmbeddingModel, default_model_id, get_model, registered_models
from .search.rerank import Reranker, get_reranker

__version__ = "0.1.0"

__all__ = [
    "Chunk",
    "Collection",
    "CopyStats",
    "DocumentMatch",
    "chunk",
    "CollectionInfo",
    "Database",
    "DatabaseOpenError",
    "DimensionMismatchError",
    "EmbedStats",
    "EmbeddingModel",
    "Filter",
    "FilterError",
    "InputError",
    "Item",
    "ItemNotFoundError",
    "Match",
    "ModelMismatchError",
    "SettingsError",
    "Query",
    "Reranker",
    "SearchResults",
    "StorageError",
    "UnknownCollectionError",
    "UnknownModelError",
    "VibesError",
    "build_filter",
    "copy_collection",
    "default_model_id",
    "get_model",
    "get_reranker",
    "hookimpl",
    "registered_models",
]

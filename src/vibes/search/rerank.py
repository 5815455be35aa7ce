"""Re-ranking: score (query, document) pairs with a model that reads both together, to
reorder a search's best candidates.

Two kinds: a sentence-transformers ``CrossEncoder`` loaded from a local directory
(offline; torch is imported only when it first scores), and a server speaking the
``/v1/rerank`` protocol that llama.cpp, Jina, Cohere and text-embeddings-inference share.
Both register like embedding models (``vibes models register DIR --kind cross-encoder``,
``vibes models register --kind rerank --api URL``); :func:`get_reranker` finds one by
its alias, or loads a cross-encoder directory given by its path.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import SettingsError
from ..errors import UnknownModelError, VibesError
from ..http import APIError, key_hint, post_json
from ..keys import require_key
from ..models.huggingface import LazyLoaded, offline_environment, pick_device
from ..models.registrations import (
    cross_encoder_problem,
    find_reranker,
    local_model_id,
    registration_problem,
    reranker_registrations,
)

__all__ = ["ApiReranker", "CrossEncoderReranker", "Reranker", "build_reranker", "get_reranker"]


class Reranker:
    """A model that scores how relevant each document is to a query, reading the two
    together (more exact than comparing vectors, and slower: for a search's best few).

    Subclasses set :attr:`model_id` and implement :meth:`rerank`.
    """

    model_id: str = ""

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        """One relevance score per document, in the documents' order; higher is more
        relevant. Scores are comparable within one call (their scale is the model's)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"


class CrossEncoderReranker(Reranker):
    """A sentence-transformers ``CrossEncoder`` loaded from a local directory (or a name
    in the local Hugging Face cache), never from a hub. Loaded on the first :meth:`rerank`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
    ) -> None:
        self.model_id = model_id or str(path)
        self.max_length = max_length
        self.batch_size = batch_size
        self._path = Path(path)
        self._model: LazyLoaded[Any] = LazyLoaded(self._load)

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> Any:
        """Load the model (once) and return the ``CrossEncoder`` object."""
        return self._model.get()

    def _load(self) -> Any:
        path = self.path
        if not path.is_dir() and (path.is_absolute() or str(path).startswith(".")):
            raise VibesError(f"Re-ranker {self.model_id}: directory not found: {path}")
        offline_environment()
        from sentence_transformers import CrossEncoder

        options: dict[str, Any] = {"device": pick_device(), "local_files_only": True}
        if self.max_length:
            options["max_length"] = self.max_length
        try:
            return CrossEncoder(str(path), **options)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise VibesError(
                f"Re-ranker {self.model_id} could not be loaded from {path}: {first_line}"
            ) from None

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        model = self.load()
        import numpy as np

        pairs = [(query, document) for document in documents]
        try:
            scores = model.predict(
                pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
            )
        except (VibesError, KeyboardInterrupt):
            raise
        except Exception as error:  # the library's failure, reported without a traceback
            raise VibesError(
                f"Re-ranker {self.model_id} failed: {type(error).__name__}: {error}"
            ) from error
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.shape != (len(documents),):
            per_pair = array.shape[-1] if array.ndim == 2 else "no"
            raise VibesError(
                f"Re-ranker {self.model_id} gives {per_pair} scores a pair (a classifier "
                "with several labels?); a re-ranker gives one"
            )
        return [float(score) for score in array]


class ApiReranker(Reranker):
    """A re-ranker behind a ``/v1/rerank`` API: llama.cpp's server, Jina, Cohere,
    text-embeddings-inference (and others that copied them).

    ``url`` is the API's base URL (``http://localhost:8080/v1``): requests go to
    ``{url}/rerank``. Answers in the shape of llama.cpp, Jina and Cohere
    (``{"results": [{"index", "relevance_score"}]}``) and of text-embeddings-inference
    (``[{"index", "score"}]``) are read, in any order.
    """

    def __init__(
        self,
        url: str,
        api_model: str,
        *,
        model_id: str | None = None,
        key_name: str | None = None,
        key_env: str | None = None,
        needs_key: bool | None = None,
        max_documents: int = 1000,
        max_retries: int = 6,
        backoff: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        self.model_id = model_id or api_model
        self.url = url.rstrip("/")
        self.api_model = api_model
        self.key_name = key_name
        self.key_env = key_env
        #: Whether a missing key is an error (by default: when a key is named).
        self.needs_key = bool(key_name or key_env) if needs_key is None else needs_key
        #: The most documents one request carries (Cohere takes 1,000).
        self.max_documents = max_documents
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        #: A key given for this run (``--key``), ahead of the environment and saved keys.
        self.key_override: str | None = None
        # What the documents are called in a request: "documents", except by
        # text-embeddings-inference's own /rerank, which calls them "texts".
        self._documents_field = "documents"

    @property
    def endpoint(self) -> str:
        return self.url + "/rerank"

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        key = require_key(
            f"Re-ranker {self.model_id}",
            self.key_name,
            self.key_env,
            override=self.key_override,
            needed=self.needs_key,
        )
        scores: list[float] = []
        for start in range(0, len(documents), self.max_documents):
            part = [str(document) for document in documents[start : start + self.max_documents]]
            scores.extend(self._scores(query, part, key))
        return scores

    def _scores(self, query: str, documents: list[str], key: str | None) -> list[float]:
        try:
            return self._post(query, documents, key, self._documents_field)
        except APIError as error:
            # A body it cannot take (422): text-embeddings-inference's own /rerank wants
            # the documents as "texts". Try that once; from then on, when it works.
            if error.status != 422 or self._documents_field == "texts":
                raise
            try:
                scores = self._post(query, documents, key, "texts")
            except APIError:
                raise error from None
            self._documents_field = "texts"
            return scores

    def _post(self, query: str, documents: list[str], key: str | None, field: str) -> list[float]:
        payload = {
            "model": self.api_model,
            "query": query,
            field: documents,
            "top_n": len(documents),
        }
        return post_json(
            self.endpoint,
            payload,
            what=f"re-ranker {self.model_id}",
            key=key,
            parse=lambda data: parse_scores(data, len(documents)),
            key_hint=key_hint(self.key_name, self.key_env),
            not_found=f"has no model {self.api_model!r} or no rerank endpoint",
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
        )


def parse_scores(data: Any, count: int) -> list[float]:
    """The scores of ``count`` documents, in their order, from a ``/rerank`` answer:
    ``{"results": [{"index", "relevance_score"}]}`` (llama.cpp, Jina, Cohere) or
    ``[{"index", "score"}]`` (text-embeddings-inference), in any order. Raises
    ValueError, saying what is wrong, for any other answer."""
    rows = data.get("results") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError('expected "results", a list of scored documents')
    scores: list[float | None] = [None] * count
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError("a result is not an object")
        index = row.get("index")
        if type(index) is not int or not 0 <= index < count:
            raise ValueError(f"a result has index {index!r}, not one of the {count} documents")
        score = row.get("relevance_score", row.get("score"))
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            raise ValueError(f"document {index} has the score {score!r}, not a number")
        if scores[index] is not None:
            raise ValueError(f"document {index} is scored twice")
        scores[index] = float(score)
    found = [score for score in scores if score is not None]
    if len(found) != count:
        raise ValueError(f"expected {count} scores, got {len(found)}")
    return found


# -- finding one --------------------------------------------------------------------------

_built: dict[str, Reranker] = {}
_built_lock = threading.Lock()


def _once(key: str, make: Callable[[], Reranker]) -> Reranker:
    """The re-ranker made for ``key`` before (a model stays loaded), else a new one."""
    with _built_lock:
        found = _built.get(key)
        if found is None:
            found = _built[key] = make()
        return found


def build_reranker(entry: dict[str, Any]) -> Reranker:
    """The re-ranker a checked registration describes (nothing is loaded until it scores)."""
    model_id = entry.get("model_id") or entry["alias"]
    if entry.get("kind") == "rerank":
        return ApiReranker(
            entry["url"],
            entry.get("api_model") or entry["alias"],
            model_id=model_id,
            key_name=entry.get("key_name"),
            key_env=entry.get("key_env"),
        )
    if entry.get("kind") == "cross-encoder":
        return CrossEncoderReranker(
            entry["path"], model_id=model_id, max_length=entry.get("max_length")
        )
    raise VibesError(f"{entry['alias']} is an embedding model, not a re-ranker")


def get_reranker(name: str) -> Reranker:
    """The re-ranker registered under ``name`` (its alias, else its id), or the
    cross-encoder in the directory ``name``. The same name gives the same object, so a
    model is loaded once a process."""
    if not name or not name.strip():
        raise VibesError("Name a re-ranker: a registered alias or a cross-encoder directory")
    entry = find_reranker(name)
    if entry is not None:
        found = entry
        return _once(json.dumps(entry, sort_keys=True), lambda: build_reranker(found))
    problem = registration_problem(name)
    if problem:
        raise SettingsError(f"Registered model {name!r} cannot be used: {problem}")
    path = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) or _is_directory(path):
        return _directory(name, path)
    if _is_embedding_model(name):
        raise UnknownModelError(f"{name} is an embedding model, not a re-ranker")
    aliases = [entry["alias"] for entry in reranker_registrations()]
    known = f"registered: {', '.join(aliases)}" if aliases else "none is registered"
    raise UnknownModelError(
        f"Unknown re-ranker: {name} ({known}; add one with 'vibes models register DIR "
        "--alias NAME --kind cross-encoder')"
    )


def _is_directory(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for a path, say
        return False


def _directory(name: str, path: Path) -> Reranker:
    if not _is_directory(path):
        raise VibesError(f"No cross-encoder directory at {name!r}")
    path = path.resolve()
    problem = cross_encoder_problem(path)
    if problem:
        raise VibesError(problem)

    def make() -> Reranker:
        return CrossEncoderReranker(path, model_id=local_model_id(path)[0])

    return _once(f"path:{path}", make)


def _is_embedding_model(name: str) -> bool:
    from ..models import registered_models

    return any(
        name == entry.model.model_id or name in entry.aliases for entry in registered_models()
    )

"""Embedding models behind an OpenAI-compatible ``/v1/embeddings`` API: OpenAI itself, or a
local server that speaks the same protocol (Ollama, llama.cpp, vLLM, text-embeddings-inference).

Requests are cut to the API's limits and sent by :mod:`vibes.http`: 429 and 5xx answers
(and dropped connections) are retried with exponential backoff and jitter, honouring
Retry-After; 401, 404 and other refusals are one-line errors that never show the key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import VibesError
from ..http import key_hint, post_json
from ..keys import require_key
from .base import EmbeddingModel

OPENAI_URL = "https://api.openai.com/v1"
#: OpenAI's embedding models: id, dimensions, aliases (those llm uses, too).
OPENAI_MODELS = (
    ("text-embedding-3-small", 1536, ("3-small",)),
    ("text-embedding-3-large", 3072, ("3-large",)),
    ("text-embedding-ada-002", 1536, ("ada-002", "ada")),
)


class OpenAICompatibleModel(EmbeddingModel):
    """A model served over an OpenAI-compatible embeddings API."""

    @property
    def runtime(self) -> str:
        return "api"

    def __init__(
        self,
        model_id: str,
        api_model: str,
        *,
        url: str | None = None,
        dimensions: int | None = None,
        key_name: str | None = "openai",
        key_env: str | None = "OPENAI_API_KEY",
        needs_key: bool = True,
        max_items: int = 2048,
        max_chars: int = 600_000,
        max_retries: int = 6,
        backoff: float = 1.0,
        timeout: float = 60.0,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        self.model_id = model_id
        self.api_model = api_model
        self._url = url
        self.dimensions = dimensions
        self.key_name = key_name
        self.key_env = key_env
        self.needs_key = needs_key
        # One request carries at most this many texts and (roughly: 4 characters a token)
        # the API's token limit.
        self.max_items = max_items
        self.max_chars = max_chars
        self.batch_size = max_items
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        #: A key given for this run (``--key``), ahead of the environment and saved keys.
        self.key_override: str | None = None

    @property
    def url(self) -> str:
        """The API's base URL; OpenAI's models honour $OPENAI_BASE_URL, as openai's SDK does."""
        return (self._url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")

    @property
    def endpoint(self) -> str:
        return self.url + "/embeddings"

    def _key(self) -> str | None:
        return require_key(
            f"Model {self.model_id}",
            self.key_name,
            self.key_env,
            override=self.key_override,
            needed=self.needs_key,
        )

    def embed_batch(self, items: Sequence[str | bytes]) -> list[list[float]]:
        return self._embed(items, self.document_prefix)

    def embed_query_batch(self, items: Sequence[str | bytes]) -> list[list[float]]:
        return self._embed(items, self.query_prefix)

    def _embed(self, items: Sequence[str | bytes], prefix: str) -> list[list[float]]:
        texts = []
        for item in items:
            if not isinstance(item, str):
                raise VibesError(f"Model {self.model_id} embeds text only, not binary content")
            texts.append(prefix + item)
        key = self._key()
        vectors: list[list[float]] = []
        for request in self._requests(texts):
            vectors.extend(self._post(request, key))
        return vectors

    def _requests(self, texts: list[str]) -> list[list[str]]:
        """The texts cut into requests within the item and size limits."""
        requests: list[list[str]] = []
        current: list[str] = []
        size = 0
        for text in texts:
            if current and (len(current) >= self.max_items or size + len(text) > self.max_chars):
                requests.append(current)
                current, size = [], 0
            current.append(text)
            size += len(text)
        if current:
            requests.append(current)
        return requests

    def _post(self, texts: list[str], key: str | None) -> list[list[float]]:
        payload: dict[str, Any] = {"model": self.api_model, "input": texts}
        payload["encoding_format"] = "float"
        return post_json(
            self.endpoint,
            payload,
            what=f"model {self.model_id}",
            key=key,
            parse=lambda data: self._parse(data, len(texts)),
            key_hint=key_hint(self.key_name, self.key_env),
            not_found=f"has no model {self.api_model!r} or no embeddings endpoint",
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
        )

    def _parse(self, data: Any, count: int) -> list[list[float]]:
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list) or len(rows) != count:
            raise ValueError(f"expected {count} embeddings")
        try:
            ordered = sorted(rows, key=lambda row: row["index"])
            return [[float(x) for x in row["embedding"]] for row in ordered]
        except (KeyError, TypeError, ValueError):
            raise ValueError("embeddings missing or not numbers") from None

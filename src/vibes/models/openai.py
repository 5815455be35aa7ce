"""Embedding models behind an OpenAI-compatible ``/v1/embeddings`` API: OpenAI itself, or a
local server that speaks the same protocol (Ollama, llama.cpp, vLLM, text-embeddings-inference).

Talks HTTP with the standard library. Requests are cut to the API's limits; 429 and 5xx
answers (and dropped connections) are retried with exponential backoff and jitter,
honouring Retry-After; 401, 404 and other refusals are one-line errors that never show
the key.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..errors import VibesError
from ..keys import get_key
from .base import EmbeddingModel

OPENAI_URL = "https://api.openai.com/v1"
#: OpenAI's embedding models: id, dimensions, aliases (those llm uses, too).
OPENAI_MODELS = (
    ("text-embedding-3-small", 1536, ("3-small",)),
    ("text-embedding-3-large", 3072, ("3-large",)),
    ("text-embedding-ada-002", 1536, ("ada-002", "ada")),
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class OpenAICompatibleModel(EmbeddingModel):
    """A model served over an OpenAI-compatible embeddings API."""

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
        key = self.key_override or get_key(self.key_name, self.key_env)
        if key is None and self.needs_key:
            ways = [f"set ${self.key_env}"] if self.key_env else []
            if self.key_name:
                ways.append(f"run 'vibes keys set {self.key_name}'")
            raise VibesError(f"Model {self.model_id} needs an API key: {' or '.join(ways)}")
        return key

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
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "vibes"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.endpoint, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as error:
                detail = self._error_detail(error, key)
                if error.code in RETRY_STATUSES and attempt < self.max_retries:
                    self._sleep(attempt, error.headers.get("Retry-After"))
                    continue
                raise VibesError(self._describe(error.code, detail)) from None
            except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
                if attempt < self.max_retries:
                    self._sleep(attempt, None)
                    continue
                reason = getattr(error, "reason", error)
                raise VibesError(
                    f"Cannot reach {self.endpoint} for model {self.model_id}: {reason}"
                ) from None
            try:
                return self._parse(raw, len(texts))
            except ValueError as error:
                if attempt < self.max_retries:
                    self._sleep(attempt, None)
                    continue
                raise VibesError(
                    f"{self.endpoint} gave an invalid answer for model {self.model_id}: {error}"
                ) from None
        raise AssertionError("unreachable")

    def _parse(self, raw: bytes, count: int) -> list[list[float]]:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"malformed JSON ({error.msg})") from None
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list) or len(rows) != count:
            raise ValueError(f"expected {count} embeddings")
        try:
            ordered = sorted(rows, key=lambda row: row["index"])
            return [[float(x) for x in row["embedding"]] for row in ordered]
        except (KeyError, TypeError, ValueError):
            raise ValueError("embeddings missing or not numbers") from None

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = None
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = None
        if delay is None:
            # Exponential backoff with full jitter, so that many clients do not retry in step.
            delay = self.backoff * (2**attempt) * random.uniform(0.5, 1.5)
        time.sleep(min(delay, 60.0))

    def _error_detail(self, error: urllib.error.HTTPError, key: str | None) -> str:
        try:
            data = json.loads(error.read() or b"{}")
            message = data.get("error", {}).get("message") if isinstance(data, dict) else None
        except (ValueError, AttributeError, OSError):
            message = None
        message = str(message or error.reason or "").strip().splitlines()[0:1]
        text = message[0] if message else ""
        if key:
            text = text.replace(key, "[key]")
        return text[:300]

    def _describe(self, status: int, detail: str) -> str:
        suffix = f": {detail}" if detail else ""
        if status == 401:
            fix = (
                f"; check ${self.key_env} or 'vibes keys set {self.key_name}'"
                if self.key_name
                else ""
            )
            return f"{self.endpoint} refused the API key for model {self.model_id} (401){fix}"
        if status == 404:
            return (
                f"{self.endpoint} has no model {self.api_model!r} or no embeddings endpoint "
                f"(404){suffix}"
            )
        if status in RETRY_STATUSES:
            return (
                f"{self.endpoint} kept failing for model {self.model_id} ({status}) after "
                f"{self.max_retries} retries{suffix}"
            )
        return f"{self.endpoint} rejected the request for model {self.model_id} ({status}){suffix}"

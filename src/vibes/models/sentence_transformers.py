"""Models run locally by the sentence-transformers library (imported only when first used)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import VibesError
from .base import EmbeddingModel

# pick_device is re-exported: it lived here first, and other code imports it from here.
from .huggingface import LazyLoaded, offline_environment, pick_device

__all__ = ["SentenceTransformerModel", "pick_device"]


class SentenceTransformerModel(EmbeddingModel):
    """A sentence-transformers model loaded from a local directory, never from a hub.

    ``path`` may be a callable so that locating the files is deferred until first use.
    """

    # Large batches let sentence-transformers sort texts by length across more of them,
    # which keeps padding (wasted work) low.
    batch_size = 256

    def __init__(
        self,
        model_id: str,
        path: str | Path | Callable[[], str | Path],
        *,
        dimensions: int | None = None,
        encode_batch_size: int = 32,
        query_prefix: str = "",
        document_prefix: str = "",
        normalize: bool | None = None,
        max_length: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        #: Put before every query / document by the model, so callers never type them
        #: (E5's "query: " and "passage: ").
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        #: True or False overrides whether vectors are scaled to unit length.
        self.normalize = normalize
        self.max_length = max_length
        self._path = path
        self._encode_batch_size = encode_batch_size
        self._model: LazyLoaded[Any] = LazyLoaded(self._load)
        self._lock = threading.Lock()  # guards the truncation counts
        self._truncation = [0, 0, 0]  # texts seen, texts cut, tokens cut

    @property
    def path(self) -> Path:
        """The directory the model's files are loaded from (or a name in the HF cache)."""
        return Path(self._path() if callable(self._path) else self._path)

    def load(self) -> Any:
        """Load the model (once) and return the ``SentenceTransformer`` object."""
        return self._model.get()

    def _load(self) -> Any:
        path = self.path
        if not path.is_dir() and (path.is_absolute() or str(path).startswith(".")):
            raise VibesError(f"Model {self.model_id}: directory not found: {path}")
        offline_environment()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(path), device=pick_device(), local_files_only=True)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise VibesError(
                f"Model {self.model_id} could not be loaded from {path}: {first_line}"
            ) from None
        # sentence-transformers 5.x renamed the method; older releases only have the old name.
        get_dimension = getattr(model, "get_embedding_dimension", None)
        if get_dimension is None:
            get_dimension = model.get_sentence_embedding_dimension
        dimensions = get_dimension()
        if self.dimensions is not None and dimensions != self.dimensions:
            raise VibesError(
                f"Model {self.model_id} at {path} makes {dimensions}-dimensional vectors, "
                f"expected {self.dimensions}"
            )
        self.dimensions = dimensions
        if self.max_length:
            model.max_seq_length = self.max_length
        return model

    @property
    def max_tokens(self) -> int:
        """How many tokens of a text the model reads (its special tokens excluded)."""
        model = self.load()
        return int(model.max_seq_length) - 2

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each of the model's tokens in ``text``."""
        tokenizer = self.load().tokenizer
        encoded = tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [(a, b) for a, b in encoded["offset_mapping"] if b > a]

    def _count_truncation(self, items: Sequence[str]) -> None:
        """Count the texts too long for the model, and the tokens it will not read, so that
        :meth:`take_truncation` can report them once for a whole run."""
        tokenizer = self.load().tokenizer
        limit = self.max_tokens
        lengths = [
            len(ids) for ids in tokenizer(list(items), add_special_tokens=False)["input_ids"]
        ]
        long = [length for length in lengths if length > limit]
        with self._lock:
            self._truncation[0] += len(items)
            self._truncation[1] += len(long)
            self._truncation[2] += sum(long) - limit * len(long)

    def take_truncation(self) -> str | None:
        """What was cut since the last call, as a sentence, or None; resets the count."""
        with self._lock:
            total, long, tokens = self._truncation
            self._truncation = [0, 0, 0]
        if not long:
            return None
        return (
            f"{long} of {total} texts are longer than the {self.max_tokens} tokens "
            f"{self.model_id} reads; {tokens:,} tokens were cut "
            "(embed with --chunk tokens to keep them)"
        )

    def embed_batch(self, items: Sequence[str | bytes]) -> Any:
        """Embed documents; returns a float32 array with one row per text."""
        return self._encode(items, self.document_prefix)

    def embed_query_batch(self, items: Sequence[str | bytes]) -> Any:
        """Embed search queries, with the query prefix."""
        return self._encode(items, self.query_prefix)

    def _encode(self, items: Sequence[str | bytes], prefix: str) -> Any:
        texts: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise VibesError(f"Model {self.model_id} embeds text only, not binary content")
            texts.append(prefix + item if prefix else item)
        model = self.load()
        self._count_truncation(texts)
        options: dict[str, Any] = {}
        if self.normalize is not None:
            options["normalize_embeddings"] = self.normalize
        return model.encode(
            texts,
            batch_size=self._encode_batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
            **options,
        )

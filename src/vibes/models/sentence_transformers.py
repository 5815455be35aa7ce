"""Models run locally by the sentence-transformers library (imported only when first used)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import VibesError
from .base import EmbeddingModel


def pick_device() -> str:
    """CUDA or Apple's MPS when present, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


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
    ) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        self._path = path
        self._encode_batch_size = encode_batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The directory the model's files are loaded from."""
        return Path(self._path() if callable(self._path) else self._path)

    def load(self) -> Any:
        """Load the model (once) and return the ``SentenceTransformer`` object."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self) -> Any:
        # Everything a model needs is on disk: never let a library reach for a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = self.path
        if not path.is_dir():
            raise VibesError(f"Model {self.model_id}: directory not found: {path}")
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
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
        return model

    def embed_batch(self, items: Sequence[str | bytes]) -> Any:
        """Embed texts; returns a float32 array with one row per text."""
        for item in items:
            if not isinstance(item, str):
                raise VibesError(f"Model {self.model_id} embeds text only, not binary content")
        model = self.load()
        return model.encode(
            list(items),
            batch_size=self._encode_batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

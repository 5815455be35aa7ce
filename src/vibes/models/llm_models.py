"""Every embedding model of ``llm`` and its plugins, usable from vibes when llm is installed:
``-m llm:ada-002``, and collections written by llm with any model llm knows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import EmbeddingModel

PREFIX = "llm:"


class LLMEmbeddingModel(EmbeddingModel):
    """An ``llm.EmbeddingModel`` seen through vibes' interface."""

    def __init__(self, model: Any, model_id: str) -> None:
        self._model = model
        self.model_id = model_id
        self.supports_text = bool(getattr(model, "supports_text", True))
        self.supports_binary = bool(getattr(model, "supports_binary", False))
        self.batch_size = getattr(model, "batch_size", None)

    def embed_batch(self, items: Sequence[str | bytes]) -> list[list[float]]:
        return [list(vector) for vector in self._model.embed_multi(list(items))]


def llm_model(name: str) -> LLMEmbeddingModel | None:
    """The llm model called ``name`` (with or without the ``llm:`` prefix), or None when llm
    is not installed or has no such model."""
    try:
        import llm
    except ImportError:
        return None
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    try:
        model = llm.get_embedding_model(bare)
    except llm.UnknownModelError:
        return None
    # The collection keeps the id it was asked for: "llm:ada-002" for vibes' own
    # collections, llm's bare id for collections llm wrote.
    return LLMEmbeddingModel(model, name if name.startswith(PREFIX) else model.model_id)

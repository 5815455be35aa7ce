"""Every embedding model of ``llm`` and its plugins, usable from vibes when llm is installed:
``-m llm:ada-002``, and collections written by llm with any model llm knows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import VibesError
from .base import EmbeddingModel

PREFIX = "llm:"


class LLMEmbeddingModel(EmbeddingModel):
    """An ``llm.EmbeddingModel`` seen through vibes' interface.

    ``model_id`` is llm's own id for the model (``text-embedding-ada-002`` for
    ``llm:ada-002``): the id a collection records must be one that llm, and vibes, can
    resolve again on another machine.
    """

    @property
    def runtime(self) -> str:
        return "llm"

    #: A key given for this run (``--key``), handed to llm ahead of its own keys. Only
    #: models that take a key have the attribute, so ``--key`` is refused for the others.
    key_override: str | None

    def __init__(self, model: Any, model_id: str) -> None:
        self._model = model
        self.model_id = model_id
        self.supports_text = bool(getattr(model, "supports_text", True))
        self.supports_binary = bool(getattr(model, "supports_binary", False))
        self.batch_size = getattr(model, "batch_size", None)
        if getattr(model, "needs_key", None):
            self.key_override = None

    def embed_batch(self, items: Sequence[str | bytes]) -> list[list[float]]:
        import llm

        key = getattr(self, "key_override", None)
        try:
            # llm's embed_multi takes the key as given, or as the name of one of llm's keys.
            return [list(vector) for vector in self._model.embed_multi(list(items), key=key)]
        except llm.NeedsKeyException as error:
            raise VibesError(
                f"Model {self.model_id} needs an API key: {error} (or give --key)"
            ) from None
        except (VibesError, KeyboardInterrupt):
            raise
        except Exception as error:  # a plugin's failure, as one line and without the key
            first = (str(error).strip().splitlines() or [""])[0]
            if key:
                first = first.replace(key, "[key]")
            raise VibesError(
                f"Model {self.model_id} failed: {type(error).__name__}: {first}"
            ) from None


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
    return LLMEmbeddingModel(model, model.model_id)

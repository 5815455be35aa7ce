"""Chunkers: cut long documents into located pieces, each embedded on its own.

Chunkers come from plugins through the ``register_chunkers`` hook, the built-in ones too.
"""

from __future__ import annotations

from typing import Any

from ..errors import VibesError
from .base import Chunk, Chunker, Option

__all__ = ["Chunk", "Chunker", "Option", "chunk", "get_chunker", "registered_chunkers"]

_registry: dict[str, Chunker] | None = None


def registered_chunkers() -> dict[str, Chunker]:
    """Every chunker the built-in and installed plugins register, by name."""
    global _registry
    if _registry is None:
        from ..plugins import get_plugin_manager

        found: dict[str, Chunker] = {}

        def register(chunker: Chunker) -> None:
            if not isinstance(chunker, Chunker):
                raise VibesError(f"A plugin registered {chunker!r}, which is not a Chunker")
            found[chunker.name] = chunker

        get_plugin_manager().hook.register_chunkers(register=register)
        _registry = found
    return _registry


def _reset_registry() -> None:
    global _registry
    _registry = None


def get_chunker(name: str) -> Chunker:
    """The chunker registered as ``name``."""
    try:
        return registered_chunkers()[name]
    except KeyError:
        raise VibesError(f"Unknown chunker: {name} (run 'vibes chunkers' to list them)") from None


def chunk(text: str, name: str = "paragraphs", *, model: Any = None, **options: Any) -> list[Chunk]:
    """Cut ``text`` with the chunker ``name``; ``model`` gives the ``tokens`` chunker its
    tokenizer (a model id, alias or :class:`~vibes.EmbeddingModel`)."""
    if isinstance(model, str):
        from ..models import get_model

        model = get_model(model)
    return get_chunker(name).chunk(text, options, model)

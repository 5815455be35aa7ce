"""Chunkers: cut long documents into located pieces, each embedded on its own.

Chunkers come from plugins through the ``register_chunkers`` hook, the built-in ones too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import VibesError
from ..plugins import PluginRegistry
from .base import Chunk, Chunker, Option

__all__ = ["Chunk", "Chunker", "Option", "chunk", "get_chunker", "registered_chunkers"]


def _collect_chunkers() -> tuple[dict[str, Chunker], Callable[..., None]]:
    found: dict[str, Chunker] = {}

    def register(chunker: Chunker) -> None:
        if not isinstance(chunker, Chunker):
            raise VibesError(f"A plugin registered {chunker!r}, which is not a Chunker")
        found[chunker.name] = chunker

    return found, register


_registry = PluginRegistry("register_chunkers", _collect_chunkers)


def registered_chunkers() -> dict[str, Chunker]:
    """Every chunker the built-in and installed plugins register, by name."""
    return _registry.get()


def _reset_registry() -> None:
    """Forget the registered chunkers, so the next lookup asks the plugins again."""
    _registry.reset()


def get_chunker(name: str) -> Chunker:
    """The chunker registered as ``name``."""
    try:
        return registered_chunkers()[name]
    except KeyError:
        raise VibesError(f"Unknown chunker: {name!r} (run 'vibes chunkers' to list them)") from None


def chunk(text: str, name: str = "paragraphs", *, model: Any = None, **options: Any) -> list[Chunk]:
    """Cut ``text`` with the chunker ``name``; ``model`` gives the ``tokens`` chunker its
    tokenizer (a model id, alias or :class:`~vibes.EmbeddingModel`)."""
    if isinstance(model, str):
        from ..models import get_model

        model = get_model(model)
    return get_chunker(name).chunk(text, options, model)

"""The plugin hooks vibes calls. Plugins implement them with :data:`hookimpl`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("vibes")
hookimpl = pluggy.HookimplMarker("vibes")


@hookspec
def register_embedding_models(register: Callable[..., Any]) -> None:
    """Register embedding models: call ``register(model, aliases=("alias",))`` for each."""


@hookspec
def register_chunkers(register: Callable[..., Any]) -> None:
    """Register chunkers: call ``register(chunker)`` with a :class:`vibes.chunking.Chunker`."""

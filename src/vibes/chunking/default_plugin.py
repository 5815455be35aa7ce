"""The built-in chunkers, registered through the same hook as any plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl
from .builtin import BUILTIN_CHUNKERS


@hookimpl
def register_chunkers(register: Callable[..., Any]) -> None:
    for chunker in BUILTIN_CHUNKERS:
        register(chunker)

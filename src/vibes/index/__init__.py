"""Vector search over a collection's vectors."""

from .exact import ExactIndex

__all__ = ["ExactIndex"]

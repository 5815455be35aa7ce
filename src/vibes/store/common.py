"""What the SQL backends share: metadata as JSON text, and lists bound in parts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from ..errors import InputError

_T = TypeVar("_T")


def dump_metadata(value: dict[str, Any] | None, item_id: str = "") -> str | None:
    """An item's metadata as JSON text (None for none), or InputError naming the item."""
    if not value:
        return None
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and stored they would break every
        # later filter and export of the collection.
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"Metadata of item {item_id!r} cannot be stored as JSON: {error}"
        ) from None


def in_parts(values: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """``values`` in lists of at most ``size``: as many as one statement may bind."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])

"""JSON as vibes reads and writes it: strict about what JSON cannot represent.

Python's ``json`` accepts and writes ``NaN`` and ``Infinity``, which are not JSON: stored in
metadata they would break every later filter, ``--where`` and export of a collection. Both
directions here refuse them, with a message naming what was wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside an HTML ``<script>`` element: every ``<``,
    ``>`` and ``&`` (and the two line separators JavaScript once refused) written as a
    ``\\u`` escape, so no text can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str | bytes) -> Any:
    """Parse JSON, refusing ``NaN``, ``Infinity`` and ``-Infinity`` (raises ValueError;
    ``json.JSONDecodeError`` for syntax errors, a subclass of it)."""
    return json.loads(text, parse_constant=_refuse_constant)


def check_metadata(metadata: Any, owner: str) -> None:
    """Raise InputError unless ``metadata`` is a dict that JSON can represent exactly."""
    from .errors import InputError

    if not isinstance(metadata, dict):
        raise InputError(f"{owner}: metadata must be a JSON object")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"{owner}: metadata cannot be stored as JSON: {error}") from None

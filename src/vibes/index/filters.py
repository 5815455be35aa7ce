"""Search filters: metadata comparisons, a literal id prefix, and raw SQL, as one SQL condition.

A filter is ``key=value``, ``key!=value``, ``key<value``, ``key<=value``, ``key>value``,
``key>=value`` or ``key in a,b,c``. ``key`` is a metadata key (``a.b`` reaches into nested
objects). Values are JSON where they parse as JSON (``3``, ``true``, ``null``), else text; a
number also matches the same number stored as text, since CSV metadata is all text. Items
without the key match only ``!=``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import VibesError

_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_IN = re.compile(r"^\s*(?P<key>[^\s=<>!]+)\s+in\s+(?P<values>.*)$", re.IGNORECASE | re.DOTALL)
# Text that SQLite's CAST would read as a number: digits with at most sign, point, exponent.
_LOOKS_NUMERIC = "(trim({x}, '0123456789.-+eE') = '' AND {x} GLOB '*[0-9]*')"


@dataclass
class SearchFilter:
    """Everything that narrows a search, compiled to one SQL condition on ``embeddings``."""

    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @property
    def sql(self) -> str:
        return " AND ".join(f"({c})" for c in self.conditions) or "1"


def _parse_value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _json_path(key: str) -> str:
    if not key:
        raise VibesError("A filter needs a metadata key before its operator")
    return "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in key.split("."))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(path: str, value: Any, params: list[Any]) -> str:
    if value is None:
        params.append(path)
        return "json_type(metadata, ?) = 'null'"
    if isinstance(value, bool):
        params.extend([path, "true" if value else "false"])
        return "json_type(metadata, ?) = ?"
    if _is_number(value):
        params.extend([path, value, path, json.dumps(value)])
        return "json_extract(metadata, ?) = ? OR json_extract(metadata, ?) = ?"
    if isinstance(value, (list, dict)):
        params.extend([path, json.dumps(value, separators=(",", ":"))])
        return "json_extract(metadata, ?) = json(?)"
    params.extend([path, str(value)])
    return "json_extract(metadata, ?) = ?"


def parse_filter(expression: str) -> tuple[str, list[Any]]:
    """One ``key OP value`` expression as (SQL condition, parameters)."""
    params: list[Any] = []
    match = _IN.match(expression)
    if match:
        path = _json_path(match["key"])
        values = [_parse_value(v) for v in match["values"].split(",") if v.strip()]
        if not values:
            raise VibesError(f"Filter {expression!r}: 'in' needs at least one value")
        return " OR ".join(f"({_equals(path, v, params)})" for v in values), params
    for operator in _OPERATORS:
        key, found, raw = expression.partition(operator)
        if found:
            break
    else:
        raise VibesError(
            f"Filter {expression!r} has no operator: use key=value, !=, <, <=, >, >= or in"
        )
    path = _json_path(key.strip())
    value = _parse_value(raw)
    if operator == "=":
        return _equals(path, value, params), params
    if operator == "!=":
        condition = _equals(path, value, params)
        params.insert(0, path)
        return f"json_type(metadata, ?) IS NULL OR NOT ({condition})", params
    if _is_number(value):
        extract = "json_extract(metadata, ?)"
        numeric = _LOOKS_NUMERIC.format(x=extract)
        params.extend([path, path, path, path, path, value])
        return (
            f"(json_type(metadata, ?) IN ('integer', 'real') OR "
            f"(json_type(metadata, ?) = 'text' AND {numeric})) "
            f"AND CAST({extract} AS REAL) {operator} ?"
        ), params
    params.extend([path, path, str(value)])
    return f"json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) {operator} ?", params


def build_filter(
    filters: Iterable[str] | Mapping[str, Any] | None = None,
    *,
    prefix: str | None = None,
    where: str | None = None,
    where_params: Sequence[Any] = (),
) -> SearchFilter:
    """Compile filters (expressions, or a ``{key: value}`` mapping for equality), a literal id
    prefix and a raw SQL condition into one :class:`SearchFilter`."""
    result = SearchFilter()
    if isinstance(filters, Mapping):
        for key, value in filters.items():
            params: list[Any] = []
            result.conditions.append(_equals(_json_path(key), value, params))
            result.params.extend(params)
    else:
        for expression in filters or ():
            condition, params = parse_filter(expression)
            result.conditions.append(condition)
            result.params.extend(params)
    if prefix:
        # substr, not LIKE: '_' and '%' in a prefix are ordinary characters.
        result.conditions.append("substr(id, 1, length(?)) = ?")
        result.params.extend([prefix, prefix])
    if where:
        result.conditions.append(where)
        result.params.extend(where_params)
    return result

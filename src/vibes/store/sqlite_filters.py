"""Compile :mod:`vibes.filters` conditions to SQLite (JSON1) over the ``embeddings`` table."""

from __future__ import annotations

import json
from typing import Any

from ..errors import FilterError
from ..filters import Compare, Condition, Filter, IdPrefix, OneOf, RawSQL, is_number

# Text that holds a number and nothing else ("2021", "3.50", "1e3"; not "2021-05-01", whose
# CAST would read 2021): text that parses as a JSON number. CASE keeps json_type from
# seeing malformed JSON, which is an error rather than false.
_NUMERIC_TEXT = (
    "(json_type(metadata, {p}) = 'text' AND "
    "CASE WHEN json_valid(json_extract(metadata, {p})) "
    "THEN json_type(json_extract(metadata, {p})) IN ('integer', 'real') ELSE 0 END)"
)


def json_path(key: tuple[str, ...]) -> str:
    """A JSON1 path for a (nested) metadata key, every part quoted."""
    return "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in key)


def _number(value: int | float) -> int | float:
    # SQLite integers are 64-bit; a larger one compares as the float it is close to.
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def _equals(path: str, value: Any, params: list[Any]) -> str:
    if value is None:
        params.append(path)
        return "json_type(metadata, ?) = 'null'"
    if isinstance(value, bool):
        params.extend([path, "true" if value else "false"])
        return "json_type(metadata, ?) = ?"
    if is_number(value):
        # The number itself, or a number stored as text (CSV metadata is all text) whose
        # value is the same: "3.50" matches 3.5.
        numeric = _NUMERIC_TEXT.format(p="?")
        value = _number(value)
        params.extend([path, value, path, path, path, path, value])
        return (
            f"json_extract(metadata, ?) = ? OR "
            f"({numeric} AND CAST(json_extract(metadata, ?) AS REAL) = ?)"
        )
    if isinstance(value, (list, dict)):
        params.extend([path, json.dumps(value, separators=(",", ":"))])
        return "json_extract(metadata, ?) = json(?)"
    params.extend([path, str(value)])
    return "json_extract(metadata, ?) = ?"


def _compare(condition: Compare, params: list[Any]) -> str:
    path = json_path(condition.key)
    operator, value = condition.op, condition.value
    if operator == "=":
        return _equals(path, value, params)
    if operator == "!=":
        params.append(path)
        # coalesce: an explicit null compared with a number is NULL in SQL, and NOT NULL
        # would leave it out, though null is not equal to the number.
        return (
            f"json_type(metadata, ?) IS NULL OR NOT coalesce(({_equals(path, value, params)}), 0)"
        )
    if operator not in ("<", "<=", ">", ">="):
        raise FilterError(f"Unknown filter operator {operator!r}")
    if is_number(value):
        numeric = _NUMERIC_TEXT.format(p="?")
        params.extend([path, path, path, path, path, _number(value)])
        return (
            f"(json_type(metadata, ?) IN ('integer', 'real') OR {numeric}) "
            f"AND CAST(json_extract(metadata, ?) AS REAL) {operator} ?"
        )
    params.extend([path, path, str(value)])
    return f"json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) {operator} ?"


def compile_condition(condition: Condition, params: list[Any]) -> str:
    """One condition as SQL on ``embeddings``, its parameters appended to ``params``."""
    if isinstance(condition, Compare):
        return _compare(condition, params)
    if isinstance(condition, OneOf):
        path = json_path(condition.key)
        return " OR ".join(f"({_equals(path, value, params)})" for value in condition.values)
    if isinstance(condition, IdPrefix):
        # substr, not LIKE: '_' and '%' in a prefix are ordinary characters.
        params.extend([condition.prefix, condition.prefix])
        return "substr(id, 1, length(?)) = ?"
    if isinstance(condition, RawSQL):
        if condition.dialect not in (None, "sqlite"):
            raise FilterError(
                f"This SQLite database cannot run a {condition.dialect} --where condition"
            )
        params.extend(condition.params)
        return condition.sql
    raise FilterError(f"Unknown filter condition {condition!r}")


def compile_filter(search_filter: Filter) -> tuple[str, list[Any]]:
    """A whole filter as one SQL condition and its parameters ("1" when empty)."""
    params: list[Any] = []
    parts = [f"({compile_condition(c, params)})" for c in search_filter.conditions]
    return " AND ".join(parts) or "1", params

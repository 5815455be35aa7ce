"""Compile :mod:`vibes.filters` conditions to PostgreSQL over ``vibes_embeddings``, whose
``metadata`` is ``jsonb``. The meaning is the one :mod:`vibes.filters` gives every backend
(the SQLite compiler is the reference): numbers stored as text compare as numbers, ``!=``
matches items without the key, and text compares byte by byte (``COLLATE "C"``), as
SQLite does."""

from __future__ import annotations

import json
from typing import Any

from ..errors import FilterError
from ..filters import Compare, Condition, Filter, IdPrefix, OneOf, RawSQL, is_number

DIALECT = "postgresql"

# Text holding a JSON number and nothing else ("2021", "3.50", "1e3"; not "2021-05-01"):
# what SQLite's json_valid/json_type accept as a number, leading and trailing blanks
# included.
_NUMBER_PATTERN = r"^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*$"


def _value(path: list[str]) -> tuple[str, list[Any]]:
    """The jsonb value at ``path`` in metadata, as SQL with its parameter."""
    return "(metadata #> %s::text[])", [path]


def _numeric(path: list[str]) -> tuple[str, list[Any]]:
    """SQL that is the value at ``path`` as numeric when it is a number or text holding
    one, else NULL; and its parameters."""
    sql = (
        "(CASE jsonb_typeof(metadata #> %s::text[]) "
        "WHEN 'number' THEN (metadata #> %s::text[])::numeric "
        "WHEN 'string' THEN CASE WHEN (metadata #>> %s::text[]) ~ %s "
        "THEN (metadata #>> %s::text[])::numeric END END)"
    )
    return sql, [path, path, path, _NUMBER_PATTERN, path]


def _equals(path: list[str], value: Any, params: list[Any]) -> str:
    if value is None:
        params.append(path)
        return "jsonb_typeof(metadata #> %s::text[]) = 'null'"
    if is_number(value):
        # The number itself, or a number stored as text (CSV metadata is all text) whose
        # value is the same: "3.50" matches 3.5.
        sql, found = _numeric(path)
        params.extend([*found, str(value)])
        return f"{sql} = %s::numeric"
    if isinstance(value, (bool, list, dict)):
        params.extend([path, json.dumps(value)])
        return "(metadata #> %s::text[]) = %s::jsonb"
    params.extend([path, path, str(value)])
    return (
        "jsonb_typeof(metadata #> %s::text[]) = 'string' "
        'AND (metadata #>> %s::text[]) = %s COLLATE "C"'
    )


def _compare(condition: Compare, params: list[Any]) -> str:
    path = list(condition.key)
    operator, value = condition.op, condition.value
    if operator == "=":
        return f"coalesce({_equals(path, value, params)}, false)"
    if operator == "!=":
        return f"NOT coalesce({_equals(path, value, params)}, false)"
    if operator not in ("<", "<=", ">", ">="):
        raise FilterError(f"Unknown filter operator {operator!r}")
    if is_number(value):
        sql, found = _numeric(path)
        params.extend([*found, str(value)])
        return f"coalesce({sql} {operator} %s::numeric, false)"
    params.extend([path, path, str(value)])
    return (
        "coalesce(jsonb_typeof(metadata #> %s::text[]) = 'string' "
        f'AND (metadata #>> %s::text[]) {operator} %s COLLATE "C", false)'
    )


def compile_condition(condition: Condition, params: list[Any]) -> str:
    """One condition as SQL on ``vibes_embeddings``, its parameters appended."""
    if isinstance(condition, Compare):
        return _compare(condition, params)
    if isinstance(condition, OneOf):
        path = list(condition.key)
        parts = [f"coalesce({_equals(path, value, params)}, false)" for value in condition.values]
        return " OR ".join(parts)
    if isinstance(condition, IdPrefix):
        params.append(condition.prefix)
        return "starts_with(id, %s)"
    if isinstance(condition, RawSQL):
        if condition.dialect not in (None, DIALECT):
            raise FilterError(
                f"This PostgreSQL database cannot run a {condition.dialect} --where condition"
            )
        # psycopg reads % as the start of a placeholder: a literal one is written %%.
        sql = (
            condition.sql.replace("%", "%%").replace("?", "%s")
            if condition.params
            else (condition.sql.replace("%", "%%"))
        )
        params.extend(condition.params)
        return sql
    raise FilterError(f"Unknown filter condition {condition!r}")


def compile_filter(search_filter: Filter) -> tuple[str, list[Any]]:
    """A whole filter as one SQL condition and its parameters ("true" when empty)."""
    params: list[Any] = []
    parts = [f"({compile_condition(c, params)})" for c in search_filter.conditions]
    return " AND ".join(parts) or "true", params

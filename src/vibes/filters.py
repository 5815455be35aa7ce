"""Search filters as data: parsed once here, compiled by each storage backend.

A filter expression is ``key=value``, ``key!=value``, ``key<value``, ``key<=value``,
``key>value``, ``key>=value`` or ``key in a,b,c``. ``key`` is a metadata key (``a.b``
reaches into nested objects). Values are JSON where they parse as JSON (``3``, ``true``,
``null``), else text. The meaning every backend gives them:

- ``=`` compares JSON values; a number also matches the same number stored as text, since
  CSV metadata is all text. ``null`` matches an explicit null.
- ``!=`` is the negation of ``=``, so items without the key match it.
- ``<``, ``<=``, ``>``, ``>=`` with a number compare numerically, numbers stored as text
  included; with text they compare text with text. Items without the key never match.
- ``in`` matches any of its values, as ``=`` would.

Besides metadata, a filter can hold a literal id prefix and a raw condition in one
backend's SQL dialect (``--where``), which only that backend accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import jsontext
from .errors import FilterError

__all__ = [
    "Compare",
    "Condition",
    "Filter",
    "IdPrefix",
    "OneOf",
    "RawSQL",
    "build_filter",
    "parse_expression",
]

OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_IN = re.compile(r"^\s*(?P<key>[^\s=<>!]+)\s+in\s+(?P<values>.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Compare:
    """A metadata value compared with ``op`` (one of :data:`OPERATORS`)."""

    key: tuple[str, ...]
    op: str
    value: Any


@dataclass(frozen=True)
class OneOf:
    """A metadata value equal to any of ``values``."""

    key: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class IdPrefix:
    """Ids starting with ``prefix``, taken literally (no wildcards)."""

    prefix: str


@dataclass(frozen=True)
class RawSQL:
    """A condition written in one backend's SQL dialect, with its parameters."""

    sql: str
    params: tuple[Any, ...] = ()
    #: The SQL dialect it is written in; None: that of whichever backend runs it (what
    #: ``--where`` gives: a condition in the SQL of the database the user named).
    dialect: str | None = None


Condition = Compare | OneOf | IdPrefix | RawSQL


@dataclass(frozen=True)
class Filter:
    """Conditions that must all hold."""

    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @property
    def needs_metadata(self) -> bool:
        """Whether only items with metadata can match: some condition compares a
        metadata value, which an item without metadata lacks, and every comparison but
        ``!=`` fails on a missing value."""
        return any(
            isinstance(c, OneOf) or (isinstance(c, Compare) and c.op != "!=")
            for c in self.conditions
        )


def is_number(value: Any) -> bool:
    """True for ints and floats, not for booleans."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_value(text: str) -> Any:
    text = text.strip()
    try:
        # NaN and Infinity are not JSON values: "x=NaN" compares with the text "NaN".
        return jsontext.loads(text)
    except ValueError:
        return text


def _key(text: str) -> tuple[str, ...]:
    text = text.strip()
    if not text:
        raise FilterError("A filter needs a metadata key before its operator")
    return tuple(text.split("."))


def parse_expression(expression: str) -> Condition:
    """One ``key OP value`` expression as a condition."""
    match = _IN.match(expression)
    if match:
        values = tuple(_parse_value(v) for v in match["values"].split(",") if v.strip())
        if not values:
            raise FilterError(f"Filter {expression!r}: 'in' needs at least one value")
        return OneOf(_key(match["key"]), values)
    for operator in OPERATORS:
        key, found, raw = expression.partition(operator)
        if found:
            return Compare(_key(key), operator, _parse_value(raw))
    raise FilterError(
        f"Filter {expression!r} has no operator: use key=value, !=, <, <=, >, >= or in"
    )


def build_filter(
    filters: Iterable[str] | Mapping[str, Any] | Filter | None = None,
    *,
    prefix: str | None = None,
    where: str | None = None,
    where_params: Sequence[Any] = (),
) -> Filter:
    """One :class:`Filter` from expressions (or a ``{key: value}`` mapping, for equality),
    a literal id prefix and a raw condition in the database's own SQL (SQLite's on
    ``embeddings``, PostgreSQL's on ``vibes_embeddings``)."""
    conditions: list[Condition] = []
    if isinstance(filters, Filter):
        conditions.extend(filters.conditions)
    elif isinstance(filters, Mapping):
        conditions.extend(Compare(_key(key), "=", value) for key, value in filters.items())
    elif isinstance(filters, str):
        conditions.append(parse_expression(filters))
    else:
        conditions.extend(parse_expression(expression) for expression in filters or ())
    if prefix:
        conditions.append(IdPrefix(prefix))
    if where:
        conditions.append(RawSQL(where, tuple(where_params)))
    return Filter(tuple(conditions))

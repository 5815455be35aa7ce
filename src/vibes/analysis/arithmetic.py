"""Vector arithmetic: ``germany + paris - france``, searched like any query vector.

Syntax:

- Terms are joined by ``+`` and ``-``; the first may carry a sign of its own.
- An operator is a ``+`` or ``-`` at the start, or after a space (or a closing quote),
  so hyphenated words (``e-mail``), ``c++`` and ids like ``id:2024-01`` stay whole.
- A term runs to the next operator: ``new york + city`` has two terms. Quote a term
  (``"` or ``'``) to keep an operator inside it: ``"rock - paper" + scissors``; quotes
  may sit inside a term too (``id:'notes - 1.md'``), the quote marks are dropped.
- A weight multiplies a term: ``0.5*paris`` or ``0.5 * paris``.
- Terms are texts, ``id:ITEM`` or ``file:PATH`` (see :mod:`.terms`).

The expression's vector is the weighted, signed sum of its terms' vectors, each scaled to
length 1 first in a cosine collection (so no term outweighs another by its length alone).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import InputError, VibesError

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection
    from ..items import SearchResults

__all__ = ["expression_ids", "expression_search", "expression_vector", "parse_expression"]

_WEIGHT = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*")
_QUOTES = "\"'"


def parse_expression(text: str) -> list[tuple[float, str]]:
    """``[(signed weight, term)]`` for an expression such as ``'king - man + woman'``;
    a one-line error naming the problem when it cannot be read."""
    if not text or not text.strip():
        raise InputError("Empty expression: give terms joined by + and -")
    terms: list[tuple[float, str]] = []
    position = 0
    length = len(text)
    while True:
        # An operator (optional before the first term).
        position = _skip_space(text, position)
        if position < length and text[position] in "+-":
            operator = text[position]
            position = _skip_space(text, position + 1)
            if position < length and text[position] in "+-" and _operator_at(text, position):
                raise InputError(
                    f"Two operators in a row at position {position + 1} of the expression"
                )
            if position >= length:
                raise InputError(f"The expression ends with {operator!r}: a term must follow it")
            sign = -1.0 if operator == "-" else 1.0
        else:
            sign = 1.0  # the first term, unsigned (a later term always follows an operator)
        weight = 1.0
        match = _WEIGHT.match(text, position)
        if match:
            weight = float(match.group(1))
            position = match.end()
            if position >= length:
                raise InputError(f"The weight {match.group(1)} multiplies no term")
        start = position
        term, position = _read_term(text, position)
        if not term:
            raise InputError(f"Empty term at position {start + 1} of the expression")
        terms.append((sign * weight, term))
        position = _skip_space(text, position)
        if position >= length:
            return terms


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _operator_at(text: str, position: int) -> bool:
    """Whether the + or - at ``position`` is an operator: at the start, or after a space
    or a closing quote (inside a word it is part of the word)."""
    return position == 0 or text[position - 1].isspace() or text[position - 1] in _QUOTES


def _read_term(text: str, position: int) -> tuple[str, int]:
    """One term from ``position``: up to the next operator, quotes honoured and dropped."""
    parts: list[str] = []
    length = len(text)
    while position < length:
        char = text[position]
        if char in _QUOTES:
            end = text.find(char, position + 1)
            if end < 0:
                raise InputError(
                    f"Unclosed quote ({char}) at position {position + 1} of the expression"
                )
            parts.append(text[position + 1 : end])
            position = end + 1
            continue
        if char in "+-" and parts and _operator_at(text, position):
            break
        parts.append(char)
        position += 1
    return "".join(parts).strip(), position


def expression_ids(text: str) -> list[str]:
    """The items an expression names with ``id:`` terms, in order, once each."""
    from .terms import describe_term

    found: list[str] = []
    for _, term in parse_expression(text):
        kind, value = describe_term(term)
        if kind == "id" and value not in found:
            found.append(value)
    return found


def expression_vector(collection: Collection, text: str) -> np.ndarray:
    """The vector an expression stands for in ``collection``: the weighted, signed sum of
    its terms' vectors (each of length 1 in a cosine collection)."""
    import numpy as np

    from .terms import term_vectors

    parsed = parse_expression(text)
    vectors = term_vectors(collection, [term for _, term in parsed])
    weights = np.asarray([weight for weight, _ in parsed], dtype=np.float64)
    total = weights @ vectors.astype(np.float64)
    scale = max(float(np.abs(vectors).max()), 1e-12)
    if float(np.abs(total).max()) <= 1e-6 * scale:
        raise VibesError("The expression's terms cancel out: its vector is zero")
    return total.astype(np.float32)


def expression_search(
    collection: Collection,
    text: str,
    n: int = 10,
    *,
    keep_terms: bool = False,
    **options: Any,
) -> SearchResults[Any]:
    """The ``n`` best results for the expression's vector (options as for
    :meth:`~vibes.Collection.search`). The items its ``id:`` terms name are left out,
    as word-vector tools do (they would top the list), unless ``keep_terms``; with
    ``documents=True``, so are the documents they are chunks of."""
    from ..items import SearchResults, check_count

    check_count(n)
    vector = expression_vector(collection, text)
    skipped = set() if keep_terms else set(expression_ids(text))
    if not skipped:
        return collection.search(vector, n, **options)
    if options.get("documents"):
        from .points import document_of

        skipped |= set(document_of(collection, sorted(skipped)).values())
    # Ask for as many more as could be left out, then leave them out.
    found = collection.search(vector, n + len(skipped), **options)
    return SearchResults([hit for hit in found if hit.id not in skipped][:n], found.warnings)

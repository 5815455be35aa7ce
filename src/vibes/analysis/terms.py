"""Terms: what a user names a location in a collection's vector space with.

A term is one of:

- ``id:ITEM``: the stored vector of item ``ITEM`` (or, for a chunked document, the mean of
  its chunks' vectors, as :func:`~vibes.analysis.points.load_points` makes it);
- ``file:PATH``: the file's content, embedded by the collection's model (its text when
  the model reads text and the file is UTF-8, else its bytes, for image models);
- ``text:TEXT``: ``TEXT`` embedded, for a text that itself starts with ``id:`` or ``file:``;
- anything else: the text itself, embedded by the collection's model.

Texts and files are embedded as search queries (with the model's query prefix, for
E5-style models), exactly as ``vibes similar -c TEXT`` / ``-i FILE`` embed them: a term
then stands for the same location wherever it is used, and an axis end or an arithmetic
term is a probe compared against stored passages, which is what query embeddings are
made for. Every vector comes back scaled to length 1 for cosine collections (what the
collection compares is then the dot product), as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, ItemNotFoundError, VibesError

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = ["describe_term", "term_vector", "term_vectors"]


def term_vector(collection: Collection, term: str) -> np.ndarray:
    """The vector ``term`` stands for in ``collection`` (float32, length 1 for cosine
    collections)."""
    return term_vectors(collection, [term])[0]


def term_vectors(collection: Collection, terms: Sequence[str]) -> np.ndarray:
    """The vectors of many terms, one row each, in order; every text and file among them
    goes to the model in one call."""
    import numpy as np

    from ..models.base import embed_array, warn_truncation
    from .points import unit_rows

    if not terms:
        raise VibesError("No terms given")
    rows: list[np.ndarray | None] = [None] * len(terms)
    contents: list[tuple[int, str | bytes]] = []
    model = None
    for position, term in enumerate(terms):
        kind, value = _split(term)
        if kind == "id":
            rows[position] = _stored_vector(collection, value)
        else:
            if model is None:
                model = collection.model()
            content = _read_file(value, model) if kind == "file" else value
            contents.append((position, content))
    if contents and model is not None:
        embedded = embed_array(model, [content for _, content in contents], query=True)
        warn_truncation(model, stacklevel=3)
        for (position, _), vector in zip(contents, embedded):
            rows[position] = vector
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except ValueError:  # vectors of several lengths
        raise VibesError("The terms' vectors have different lengths") from None
    dimensions = collection.dimensions
    if dimensions is not None and matrix.shape[1] != dimensions:
        raise VibesError(
            f"The terms' vectors have {matrix.shape[1]} dimensions, "
            f"collection {collection.name!r} {dimensions}"
        )
    if collection.distance == "cosine":
        if not np.all(np.linalg.norm(matrix, axis=1) > 0):
            zero = terms[int(np.argmin(np.linalg.norm(matrix, axis=1)))]
            raise VibesError(f"Term {zero!r} has a zero vector: it points nowhere")
        matrix = unit_rows(matrix)
    return matrix


def describe_term(term: str) -> tuple[str, str]:
    """``(kind, value)``: ``("id", ITEM)``, ``("file", PATH)`` or ``("text", TEXT)``."""
    return _split(term)


def _split(term: str) -> tuple[str, str]:
    for kind in ("id", "file", "text"):
        if term.startswith(kind + ":"):
            value = term[len(kind) + 1 :]
            if kind == "text" and not value.strip():
                raise InputError(f"Empty term {term!r}")
            if kind != "text" and not value:
                raise InputError(f"Term {term!r} names no {'item' if kind == 'id' else 'file'}")
            return kind, value
    if not term.strip():
        raise InputError("Empty term: give a text, id:ITEM or file:PATH")
    return "text", term


def _stored_vector(collection: Collection, item_id: str) -> np.ndarray:
    """An item's stored vector, else the mean of a chunked document's chunks' vectors."""
    import numpy as np

    from .points import unit_rows

    store = collection.database.store
    if collection.exists:
        vector = store.get_vector(collection.id, item_id)
        if vector is not None:
            return np.asarray(vector, dtype=np.float32)
        record = store.document(collection.id, item_id)
        if record is not None and record.chunk_count > 0:
            chunks = store.document_chunks(collection.id, item_id, 0, record.chunk_count - 1)
            found = [store.get_vector(collection.id, chunk.id) for chunk in chunks]
            vectors = [v for v in found if v is not None]
            if vectors:
                matrix = np.asarray(vectors, dtype=np.float32)
                if collection.distance == "cosine":
                    matrix = unit_rows(matrix)  # as load_points averages them
                return np.asarray(matrix.mean(axis=0), dtype=np.float32)
    raise ItemNotFoundError(f"No item {item_id!r} in collection {collection.name!r}")


def _read_file(path: str, model: object) -> str | bytes:
    """A file's text (UTF-8) for models that read text, else its bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"Cannot read {path!r}: {error.strerror or error}") from None
    if not data.strip():
        raise InputError(f"File {path!r} is empty")
    if getattr(model, "supports_text", True):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if not getattr(model, "supports_binary", False):
                raise InputError(f"File {path!r} is not UTF-8 text") from None
    return data

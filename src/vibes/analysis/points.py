"""The vectors every analysis works on: a collection's items, or its chunked documents as
wholes (the mean of their chunks' vectors), read in bulk as one float32 matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from ..collection import Collection

__all__ = ["Points", "load_points", "load_texts", "unit_rows"]


@dataclass
class Points:
    """Ids and their vectors, row i for ``ids[i]``, ordered by id. With ``documents``, a
    chunked document is one point (its id the document's) and its chunks are not."""

    ids: list[str]
    vectors: np.ndarray
    documents: bool = False

    def __len__(self) -> int:
        return len(self.ids)


def unit_rows(matrix: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """``matrix`` with every row scaled to length 1 (float32; zero rows stay zero): a
    copy, or with ``in_place`` the same float32 array scaled (when it can be written)."""
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float32)
    # einsum: no temporary the size of the matrix, as np.linalg.norm makes.
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    norms[norms == 0] = 1.0
    if in_place and matrix.flags.writeable:
        matrix /= norms
        return matrix
    return matrix / norms


def load_points(
    collection: Collection, *, documents: bool = False, normalise: bool | None = None
) -> Points:
    """Every item's vector (or, with ``documents``, every chunked document's and every
    unchunked item's). ``normalise`` (by default: when the collection compares by cosine)
    scales each row to length 1, so that a dot product is the cosine."""
    import numpy as np

    if normalise is None:
        normalise = collection.distance == "cosine"
    if not collection.exists:
        return Points([], np.empty((0, collection.dimensions or 0), dtype=np.float32), documents)
    ids, matrix = collection.matrix()
    if normalise:
        matrix = unit_rows(matrix, in_place=True)  # freshly read: no one else holds it
    if not documents:
        return Points(ids, matrix, False)
    owners = document_of(collection, ids)
    if not owners:
        return Points(ids, matrix, True)
    # One row per document: the mean of its chunks' (unit) vectors, in one pass.
    point_ids = sorted({owners.get(item_id, item_id) for item_id in ids})
    position = {point_id: i for i, point_id in enumerate(point_ids)}
    rows = np.fromiter((position[owners.get(i, i)] for i in ids), dtype=np.int64, count=len(ids))
    # Rows sorted by their point, then summed a run at a time (np.add.at is ~60x slower).
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=len(point_ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(matrix[order].astype(np.float64), starts, axis=0)
    vectors = (sums / counts[:, None]).astype(np.float32)
    if normalise:
        vectors = unit_rows(vectors, in_place=True)
    return Points(point_ids, vectors, True)


def document_of(collection: Collection, ids: list[str] | None = None) -> dict[str, str]:
    """The document of each chunk among ``ids`` (every chunk, by default)."""
    store = collection.database.store
    chunk_ids = store.chunk_ids(collection.id) if ids is None else ids
    records = store.chunk_records(collection.id, chunk_ids)
    return {chunk_id: record.document_id for chunk_id, record in records.items()}


def load_texts(
    collection: Collection, ids: list[str], *, documents: bool = False
) -> dict[str, str | None]:
    """The stored text of each of ``ids`` (None when it was not stored). With
    ``documents``, a document's text is its chunks' texts in order, joined by newlines."""
    store = collection.database.store
    texts: dict[str, str | None] = {item_id: None for item_id in ids}
    for item_id, item in store.get_items(collection.id, ids).items():
        texts[item_id] = item.content
    if not documents:
        return texts
    missing = {item_id for item_id, text in texts.items() if text is None}
    if not missing:
        return texts
    owners = {
        chunk: document
        for chunk, document in document_of(collection).items()
        if document in missing
    }
    records = store.chunk_records(collection.id, list(owners))
    parts: dict[str, list[tuple[int, str]]] = {}
    for chunk_id, item in store.get_items(collection.id, list(owners)).items():
        if item.content is not None:
            parts.setdefault(owners[chunk_id], []).append((records[chunk_id].index, item.content))
    for document, pieces in parts.items():
        texts[document] = "\n".join(text for _, text in sorted(pieces))
    return texts

"""Related items: every item's ``n`` nearest neighbours, precomputed into the database and
kept in step through the change log.

The table is ``vibes_similarities(collection_id, id, other_id, score)``, the shape of the
``similarities(id, other_id, score)`` table of Simon Willison's TIL site, so a site
generator (or Datasette) reads an item's related items with one indexed query. A build
multiplies blocks of rows by the whole matrix (:mod:`.neighbours`); afterwards, changes
logged by anyone (vibes, ``llm``, plain SQL) are applied incrementally, one reader of the
change log among others (consumer ``related``):

- an item that changed, or whose list held an item that changed or went, gets its list
  computed again;
- every other item keeps its list, merged with the changed items that now beat the
  weakest of its neighbours.

So after a change of c items, the work is one (items × c) product plus the lists of the
few items that pointed at them, not a rebuild. Chunked documents can relate as wholes
(``documents=True``): a document is the mean of its chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseOpenError, VibesError
from ..store.base import RelatedState
from .neighbours import all_nearest, block_rows, nearest, scores
from .points import Points, document_of, load_points, load_texts

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = [
    "DEFAULT_N",
    "LOG_CONSUMER",
    "RelatedStatus",
    "build_related",
    "drop_related",
    "hydrate",
    "read_related",
    "related_status",
    "update_related",
]

#: This table's name among the readers of the change log.
LOG_CONSUMER = "related"
#: Neighbours kept per item by default.
DEFAULT_N = 10
#: A write that changes at most this many items updates the related items before it
#: returns; a larger one leaves them to the next read or ``vibes related`` (which says so).
INLINE_CHANGES = 1_000
#: Past this share of the collection changed, rebuilding is cheaper than updating (an
#: update computes about n + 1 lists per changed item).
REBUILD_SHARE = 0.1
#: Items written per transaction while a build stores its lists.
WRITE_BATCH = 5_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RelatedStatus:
    """What a collection's related items hold: ``n`` per item, over ``items`` points
    (documents when ``documents``), with ``pending`` changes not yet applied."""

    state: str  # "ready" or "none"
    n: int | None = None
    documents: bool | None = None
    items: int | None = None
    pending: int | None = None
    built: int | None = None
    updated: int | None = None  # how many lists the last update rewrote
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def related_status(collection: Collection) -> RelatedStatus:
    """The collection's related items: whether there are some, and how current."""
    store = collection.database.store
    state = store.related_state(collection.id) if collection.exists else None
    if state is None:
        return RelatedStatus("none")
    position = store.log_position(collection.id, LOG_CONSUMER) or 0
    _, pending = store.changes_since(collection.id, position)
    return RelatedStatus(
        "ready",
        state.n,
        state.documents,
        len(store.related_at(collection.id, 0)),
        len(pending),
        state.built,
    )


def build_related(
    collection: Collection,
    n: int = DEFAULT_N,
    *,
    documents: bool = False,
    progress: Progress | None = None,
) -> RelatedStatus:
    """Compute every item's ``n`` nearest neighbours (exactly) and store them, replacing
    any stored before; later changes are applied by :func:`update_related`.
    ``progress(done, total)`` is called as blocks of items are done."""
    if n < 1:
        raise VibesError("Related items need n of at least 1")
    if not collection.exists or collection.count() == 0:
        raise VibesError(f"Collection {collection.name!r} is empty: nothing to relate")
    started = time.perf_counter()
    store = collection.database.store
    # The log position is read before the vectors: a change made while they are read is
    # applied again by the next update, never missed.
    seq = store.last_change(collection.id)
    points = load_points(collection, documents=documents)
    # Kept as two compact arrays (a few MB at 100,000 items), not Python lists, until
    # they are written: memory stays close to the vectors' own.
    neighbours, values = all_nearest(
        points.vectors, n, distance=collection.distance, progress=progress
    )
    with store.transaction() as tx:
        store.drop_related(tx, collection.id)
        state = RelatedState(collection.id, n, documents, int(time.time()))
        store.save_related_state(tx, state)
        ids = points.ids
        for start in range(0, len(ids), WRITE_BATCH):
            rows = range(start, min(start + WRITE_BATCH, len(ids)))
            store.write_related(
                tx,
                collection.id,
                {
                    ids[row]: [(ids[j], s) for j, s in zip(found, scored)]
                    for row, found, scored in zip(
                        rows, neighbours[rows].tolist(), values[rows].round(6).tolist()
                    )
                },
            )
        store.advance_log(tx, collection.id, LOG_CONSUMER, seq)
    return RelatedStatus(
        "ready",
        n,
        documents,
        len(points),
        0,
        state.built,
        len(points),
        round(time.perf_counter() - started, 3),
    )


def drop_related(collection: Collection) -> None:
    """Delete the collection's related items; writes stop maintaining them."""
    store = collection.database.store
    with store.transaction() as tx:
        store.drop_related(tx, collection.id)
        store.release_log(tx, collection.id, LOG_CONSUMER)


def update_related(
    collection: Collection, *, limit: int | None = None, progress: Progress | None = None
) -> RelatedStatus | None:
    """Apply the changes logged since the related items were last brought up to date.
    Returns None when the collection has none, or when more than ``limit`` items changed
    (they are then left for a later call)."""
    started = time.perf_counter()
    store = collection.database.store
    if not collection.exists:
        return None
    state = store.related_state(collection.id)
    position = store.log_position(collection.id, LOG_CONSUMER)
    if state is None or position is None:
        return None
    seq, changed = store.changes_since(collection.id, position)
    if not changed:
        return RelatedStatus("ready", state.n, state.documents, pending=0, built=state.built)
    if limit is not None and len(changed) > limit:
        return None
    points = load_points(collection, documents=state.documents)
    if len(changed) > REBUILD_SHARE * max(len(points), 1):
        return build_related(collection, state.n, documents=state.documents, progress=progress)
    changed_points = _changed_points(collection, changed, state.documents)
    row_of = {point_id: row for row, point_id in enumerate(points.ids)}
    gone = sorted(point for point in changed_points if point not in row_of)
    moved = sorted(point for point in changed_points if point in row_of)
    # Lists that must be computed again: the changed points' own, and those that held a
    # changed point (its score moved, or it is gone: the next best is unknown).
    pointing = store.related_pointing_to(collection.id, sorted(changed_points))
    again = sorted({row_of[p] for p in moved} | {row_of[p] for p in pointing if p in row_of})
    lists = _lists(
        points, nearest(points.vectors, state.n, rows=again, distance=collection.distance)
    )
    # Every other list can only gain a moved point that beats its weakest neighbour.
    lists.update(_merged(collection, points, moved, set(lists), state.n, row_of))
    with store.transaction() as tx:
        store.delete_related(tx, collection.id, gone)
        store.write_related(tx, collection.id, lists)
        store.advance_log(tx, collection.id, LOG_CONSUMER, seq)
    return RelatedStatus(
        "ready",
        state.n,
        state.documents,
        len(points),
        0,
        state.built,
        len(lists) + len(gone),
        round(time.perf_counter() - started, 3),
    )


def read_related(
    collection: Collection, item_id: str, n: int | None = None
) -> tuple[list[tuple[str, float]], list[str]]:
    """The stored related items of ``item_id`` (best first, at most ``n``), and warnings.
    Pending changes are applied first when there are few (up to :data:`INLINE_CHANGES`,
    so a read stays quick); with more, or on a database that cannot be written, the
    stored lists are read as they are, with a warning saying how many changes they miss."""
    store = collection.database.store
    state = store.related_state(collection.id) if collection.exists else None
    if state is None:
        raise VibesError(
            f"Collection {collection.name!r} has no related items yet "
            f"(run 'vibes related {collection.name}' to compute them)"
        )
    warnings: list[str] = []
    try:
        applied = update_related(collection, limit=INLINE_CHANGES)
    except DatabaseOpenError:
        applied, why = None, "the database cannot be written"
    else:
        why = f"run 'vibes related {collection.name}' to apply them"
    if applied is None:
        position = store.log_position(collection.id, LOG_CONSUMER) or 0
        _, pending = store.changes_since(collection.id, position)
        warnings.append(
            f"The related items of collection {collection.name!r} miss {len(pending)} "
            f"changed items ({why})"
        )
    found = store.related(collection.id, [item_id]).get(item_id)
    if found is None:
        if not _known_point(collection, item_id, state.documents):
            kind = "item or document" if state.documents else "item"
            raise VibesError(f"No {kind} {item_id!r} in collection {collection.name!r}")
        found = []
    return (found if n is None else found[:n]), warnings


def hydrate(collection: Collection, found: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Related items as ``vibes similar`` prints hits: id, score, content, metadata (a
    related document's content is its chunks' text, its metadata the document's)."""
    store = collection.database.store
    ids = [other for other, _ in found]
    stored = store.get_items(collection.id, ids)
    documents = [item_id for item_id in ids if item_id not in stored]
    texts = load_texts(collection, documents, documents=True) if documents else {}
    rows = []
    for other, score in found:
        item = stored.get(other)
        if item is not None:
            content, metadata = item.content, item.metadata
        else:
            record = store.document(collection.id, other)
            content, metadata = texts.get(other), record.metadata if record else None
        rows.append({"id": other, "score": score, "content": content, "metadata": metadata})
    return rows


def _known_point(collection: Collection, item_id: str, documents: bool) -> bool:
    store = collection.database.store
    if store.get_items(collection.id, [item_id]):
        return True
    return documents and store.document(collection.id, item_id) is not None


def _lists(
    points: Points,
    blocks: Any,
    progress: Progress | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Neighbour lists by id from :func:`nearest`'s blocks."""
    lists: dict[str, list[tuple[str, float]]] = {}
    ids = points.ids
    done = 0
    for numbers, best, best_scores in blocks:
        for row, neighbours, values in zip(numbers.tolist(), best.tolist(), best_scores.tolist()):
            lists[ids[row]] = [(ids[j], round(s, 6)) for j, s in zip(neighbours, values)]
        done += len(numbers)
        if progress is not None:
            progress(done, len(ids))
    return lists


def _changed_points(collection: Collection, changed: list[str], documents: bool) -> set[str]:
    """The points the changed items belong to: themselves, or, relating documents, their
    documents (a deleted chunk's document is known by its id, ``DOC#N``)."""
    if not documents:
        return set(changed)
    owners = document_of(collection, changed)
    found: set[str] = set()
    for item_id in changed:
        if item_id in owners:
            found.add(owners[item_id])
        elif "#" in item_id:
            found.add(item_id.rsplit("#", 1)[0])
            found.add(item_id)
        else:
            found.add(item_id)
    return found


def _merged(
    collection: Collection,
    points: Points,
    moved: list[str],
    skip: set[str],
    n: int,
    row_of: dict[str, int],
) -> dict[str, list[tuple[str, float]]]:
    """The lists (other than ``skip``) that a moved point now enters: each keeps its
    neighbours and gains the moved points scoring above its weakest one. Scored in
    blocks of rows, so memory stays at one block whatever the number of points."""
    import numpy as np

    if not moved:
        return {}
    store = collection.database.store
    # A full list's weakest score (its n-th); a list shorter than n (a collection of n
    # points or fewer) takes any moved point.
    floor = np.full(len(points), -np.inf, dtype=np.float64)
    full = np.zeros(len(points), dtype=bool)
    for point_id, low in store.related_at(collection.id, n - 1).items():
        row = row_of.get(point_id)
        if row is not None:
            floor[row] = low
            full[row] = True
    moved_rows = np.asarray([row_of[p] for p in moved], dtype=np.int64)
    moved_matrix = points.vectors[moved_rows]
    gains: dict[str, list[tuple[str, float]]] = {}
    step = block_rows(len(moved))
    for start in range(0, len(points), step):
        found = scores(points.vectors[start : start + step], moved_matrix, collection.distance)
        # A point is not its own neighbour; stored scores are rounded, so compare at
        # that precision and a tie does not churn.
        own = (moved_rows >= start) & (moved_rows < start + len(found))
        found[moved_rows[own] - start, np.flatnonzero(own)] = -np.inf
        found = np.round(found, 6)
        limit = np.where(
            full[start : start + len(found)], floor[start : start + len(found)], -np.inf
        )
        rows, columns = np.nonzero(found > limit[:, None])
        for row, column in zip(rows.tolist(), columns.tolist()):
            point_id = points.ids[start + row]
            if point_id not in skip:
                gains.setdefault(point_id, []).append((moved[column], float(found[row, column])))
    if not gains:
        return {}
    current = store.related(collection.id, list(gains))
    moved_set = set(moved)
    merged: dict[str, list[tuple[str, float]]] = {}
    for point_id, new in gains.items():
        pairs = [pair for pair in current.get(point_id, []) if pair[0] not in moved_set] + new
        pairs.sort(key=lambda pair: (-pair[1], row_of.get(pair[0], -1)))
        merged[point_id] = pairs[:n]
    return merged

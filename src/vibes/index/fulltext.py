"""Keeps each collection's full-text index in step with its items, whoever writes them.

The index is one table per collection in the backend (SQLite FTS5, BM25 ranking), keyed
by the items' stable keys. It is one reader of the change log (consumer ``fulltext``):

- vibes' own writes pass the text they embed (stored or not) to :meth:`FullText.sync`,
  in the transaction of the batch, so a collection embedded without ``--store`` is still
  searchable by its words while its text is kept nowhere else;
- every other change in the log since the index's position (``llm``, plain SQL, deletes)
  is applied from what is stored: the item's stored text, or no entry when it has none or
  is gone. So the index never holds a stale or a deleted item.

A search first applies what the log holds beyond the index's position (a write to the
database; on a read-only database the changed items are left out of the text results
instead, and the caller is told). A missing index, a damaged one (its record without its
table), or a backend without full-text support is reported as a problem, and the search
pipeline falls back to vector search and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DatabaseOpenError, VibesError
from ..store.base import Candidates, CollectionRecord, FullTextState, Store

#: This index's name among the readers of the change log.
LOG_CONSUMER = "fulltext"
#: The tokenizer new indexes use: Porter stemming over Unicode words, accents folded,
#: chosen by measurement on real text (see bench/bench_hybrid.py).
DEFAULT_TOKENIZER = "porter unicode61 remove_diacritics 2"
#: How many index entries (documents holding a query's words, summed over its words) a
#: text search reads at most before it leaves out the commonest words: the rarer words
#: decide a BM25 ranking, the common ones its cost. Measured by bench/hybrid_study.py: on
#: its labelled sets (3,000 to 7,400 documents) 10,000 leaves nDCG@10 exactly as without
#: a budget (5,000 starts to cost), and at 100,000 documents it brings the text query's
#: median from 53 ms to 13 ms (95th percentile 125 ms to 25 ms).
POSTINGS_BUDGET = 10_000
#: Items written per transaction while an index is built from stored text.
BUILD_BATCH = 5_000


class FullText:
    """Full-text indexes of one store's collections."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- state ---------------------------------------------------------------------------

    def state(self, collection_id: int) -> FullTextState | None:
        """The collection's index as recorded, or None when it has none."""
        return self.store.fulltext_state(collection_id)

    def problem(self, target: CollectionRecord) -> str | None:
        """Why the collection's index cannot answer a search now, or None."""
        unsupported = self.store.fulltext_support()
        if unsupported is not None:
            return f"cannot be searched by text: {unsupported}"
        state = self.state(target.id)
        if state is None:
            return f"has no full-text index (run 'vibes index {target.name} --fts')"
        if not state.present or self.store.log_position(target.id, LOG_CONSUMER) is None:
            return (
                f"has a damaged full-text index (run 'vibes index {target.name} --fts --rebuild')"
            )
        return None

    # -- keeping in step -----------------------------------------------------------------

    def enabled(self, collection_id: int) -> bool:
        state = self.state(collection_id)
        return state is not None and state.present

    def sync(self, tx: Any, collection_id: int, known: Mapping[str, str | None]) -> None:
        """Apply every change logged since the index's position, inside the write
        transaction ``tx``: items in ``known`` get that text (what the writer embedded),
        the others their stored text. Items in ``known`` are written even when the log
        does not name them (an unchanged item whose entry was missing)."""
        position = self.store.log_position(collection_id, LOG_CONSUMER)
        if position is None:
            return  # no index, or a damaged one that only a rebuild mends
        seq, changed = self.store.changes_since(collection_id, position)
        others = [item_id for item_id in changed if item_id not in known]
        stored = self.store.get_items(collection_id, others)
        texts: dict[str, str | None] = {item_id: None for item_id in others}
        for item_id, item in stored.items():
            texts[item_id] = item.content
        texts.update(known)
        self.store.write_fulltext(tx, collection_id, texts)
        if seq != position:
            self.store.advance_log(tx, collection_id, LOG_CONSUMER, seq)

    def catch_up(self, target: CollectionRecord) -> tuple[set[str], str | None]:
        """Bring the index up to the log before a search. Returns the ids it could not
        apply (a read-only database) with a message saying so, else (set(), None)."""
        position = self.store.log_position(target.id, LOG_CONSUMER)
        if position is None or self.store.last_change(target.id) <= position:
            return set(), None
        try:
            with self.store.transaction() as tx:
                self.sync(tx, target.id, {})
            return set(), None
        except DatabaseOpenError:
            _, changed = self.store.changes_since(target.id, position)
            return set(changed), (
                f"The full-text index of collection {target.name!r} is behind by "
                f"{len(changed)} changed items and the database cannot be written; "
                "those items are left out of the text results"
            )

    # -- building and dropping -------------------------------------------------------------

    def build(self, target: CollectionRecord, tokenizer: str | None = None) -> dict[str, Any]:
        """(Re)build the collection's index from its stored text. Items stored without
        text cannot be indexed from the database: embedding them again (a re-run of the
        same ``embed-multi``) indexes them. Returns :meth:`status`."""
        unsupported = self.store.fulltext_support()
        if unsupported is not None:
            raise VibesError(f"Cannot build a full-text index: {unsupported}")
        tokenizer = tokenizer or DEFAULT_TOKENIZER
        with self.store.transaction() as tx:
            self.store.ensure_keys(tx, target.id)
            self.store.create_fulltext(tx, target.id, tokenizer)
            self.store.advance_log(tx, target.id, LOG_CONSUMER, self.store.last_change(target.id))
            batch: dict[str, str | None] = {}
            # Read on this connection, inside the write lock: nobody writes meanwhile,
            # so the position recorded above covers exactly what is indexed.
            for page, _ in self.store.iter_items(target.id, page_size=BUILD_BATCH):
                for item in page:
                    if item.content:
                        batch[item.id] = item.content
                self.store.write_fulltext(tx, target.id, batch)
                batch = {}
        return self.status(target)

    def create(self, tx: Any, collection_id: int) -> None:
        """Give a new (empty) collection its index, inside its first write."""
        if self.store.fulltext_support() is not None:
            return  # searched by vector only; `vibes index` says why
        self.store.create_fulltext(tx, collection_id, DEFAULT_TOKENIZER)
        self.store.advance_log(
            tx, collection_id, LOG_CONSUMER, self.store.last_change(collection_id)
        )

    def drop(self, target: CollectionRecord) -> None:
        """Delete the collection's index; text searches then fall back to vectors."""
        with self.store.transaction() as tx:
            self.store.drop_fulltext(tx, target.id)
            self.store.release_log(tx, target.id, LOG_CONSUMER)

    def status(self, target: CollectionRecord) -> dict[str, Any]:
        """What ``vibes index COLLECTION`` reports about the full-text index."""
        unsupported = self.store.fulltext_support()
        if unsupported is not None:
            return {"state": "unavailable", "reason": unsupported}
        state = self.state(target.id)
        if state is None:
            return {"state": "none"}
        problem = self.problem(target)
        if problem is not None:
            return {"state": "damaged", "tokenizer": state.tokenizer}
        position = self.store.log_position(target.id, LOG_CONSUMER) or 0
        _, behind = self.store.changes_since(target.id, position)
        items = self.store.count(target.id)
        indexed = self.store.fulltext_count(target.id)
        return {
            "state": "ready",
            "tokenizer": state.tokenizer,
            "indexed": indexed,
            "without_text": max(items - indexed - len(behind), 0),
            "pending": len(behind),
            "keeps_text": state.keeps_text,
        }

    # -- searching -------------------------------------------------------------------------

    def search(
        self,
        target: CollectionRecord,
        terms: list[str],
        k: int,
        *,
        syntax: str | None = None,
        candidates: Candidates | None = None,
        exclude: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best (id, BM25 score) for the query's terms (or an expression in the
        backend's own syntax), leaving out ``exclude``. Terms beyond the postings budget
        (the commonest, once the rarer ones hold POSTINGS_BUDGET documents) are left out,
        so a query's time stays bounded however large the collection grows."""
        wanted = k + len(exclude or ())
        found = self.store.search_fulltext(
            target.id, terms, wanted, syntax=syntax, candidates=candidates, budget=POSTINGS_BUDGET
        )
        if exclude:
            found = [pair for pair in found if pair[0] not in exclude]
        return found[:k]

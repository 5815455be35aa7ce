"""Concurrent searches answered together: requests for the same collection with the same
options that arrive while one is being answered wait, and the next of them answers all of
them with one :meth:`~vibes.Collection.search_many` call (one model call for every query
text, one matrix product or index pass).

A server's threads call :meth:`Batcher.search`; no thread of its own runs here. A lone
request is answered at once, by itself, exactly as ``vibes similar`` answers it; under
load, model calls of 8 short queries cost about half of 8 calls of one (measured by
``bench/bench_serve.py``). Scores of a batched query may then differ from a lone one's in
the last bits of a float (a padded batch goes through other kernels); the hits do not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

__all__ = ["Batcher"]

#: The most queries one model call answers.
MAX_BATCH = 16


class _Job:
    __slots__ = ("done", "error", "lead", "query", "result")

    def __init__(self, query: Any) -> None:
        self.query = query
        self.done = threading.Event()
        self.lead = False  # woken to answer the waiting jobs, itself among them
        self.result: Any = None
        self.error: BaseException | None = None


class _Lane:
    """The jobs waiting for one key, and whether one of them is being answered now."""

    def __init__(self) -> None:
        self.pending: list[_Job] = []
        self.running = False


class Batcher:
    """Answers concurrent searches that share a key in batches of up to ``max_batch``."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._lanes: dict[Hashable, _Lane] = {}

    def run(
        self, key: Hashable, query: Any, answer: Callable[[Sequence[Any]], Sequence[Any]]
    ) -> Any:
        """The answer to ``query``: ``answer(queries)`` returns one result per query, for
        this query and any others of the same ``key`` waiting with it. When a batch fails
        as a whole, each of its queries is answered alone, so that one query's error is
        its own."""
        job = _Job(query)
        with self._lock:
            lane = self._lanes.setdefault(key, _Lane())
            lane.pending.append(job)
            leading = not lane.running
            lane.running = True
        while True:
            if leading:
                self._answer(key, lane, answer)
            job.done.wait()
            if job.lead and job.result is None and job.error is None:
                job.done.clear()
                job.lead, leading = False, True
                continue
            if job.error is not None:
                raise job.error
            return job.result

    def _answer(
        self, key: Hashable, lane: _Lane, answer: Callable[[Sequence[Any]], Sequence[Any]]
    ) -> None:
        with self._lock:
            batch = lane.pending[: self.max_batch]
            del lane.pending[: self.max_batch]
        try:
            try:
                results = list(answer([job.query for job in batch]))
                for job, result in zip(batch, results):
                    job.result = result
            except BaseException:
                if len(batch) == 1:
                    raise
                for job in batch:  # each alone: its own answer, or its own error
                    try:
                        job.result = answer([job.query])[0]
                    except Exception as error:
                        job.error = error
        except BaseException as error:
            batch[0].error = error
        finally:
            with self._lock:
                following = lane.pending[0] if lane.pending else None
                if following is not None:
                    following.lead = True
                else:
                    lane.running = False
                    del self._lanes[key]
            for job in batch:
                job.done.set()
            if following is not None:
                following.done.set()


def options_key(options: dict[str, Any]) -> str:
    """A hashable form of search options (lists of filters included)."""
    return json.dumps(options, sort_keys=True, default=repr)

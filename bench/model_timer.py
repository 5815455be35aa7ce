"""Shared by the benchmarks: time spent inside a model, to show vibes' own overhead apart."""

from __future__ import annotations

import time
from typing import Any


class ModelTimer:
    """Wraps ``model.embed_batch`` and adds up the seconds spent in it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seconds = 0.0
        self._embed_batch = model.embed_batch

        def timed(items):
            start = time.perf_counter()
            try:
                return self._embed_batch(items)
            finally:
                self.seconds += time.perf_counter() - start

        model.embed_batch = timed

    def reset(self) -> None:
        self.seconds = 0.0

    def restore(self) -> None:
        self.model.embed_batch = self._embed_batch

"""Exact nearest-neighbour search: every vector in one float32 matrix, scored by BLAS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DimensionMismatchError, VibesError


class ExactIndex:
    """A collection's vectors as one row-normalised float32 matrix, for cosine similarity."""

    def __init__(self, ids: list[str], blobs: Sequence[bytes], dimensions: int) -> None:
        self.ids = ids
        self.dimensions = dimensions
        buffer = b"".join(blobs)
        if len(buffer) != len(ids) * dimensions * 4:
            for item_id, blob in zip(ids, blobs):
                if blob is None or len(blob) != dimensions * 4:
                    size = 0 if blob is None else len(blob) // 4
                    raise DimensionMismatchError(
                        f"Stored item {item_id!r} has a {size}-dimensional vector; "
                        f"the collection holds {dimensions}-dimensional ones"
                    )
        matrix = np.frombuffer(buffer, dtype="<f4").reshape(len(ids), dimensions)
        norms = np.linalg.norm(matrix, axis=1)
        norms[norms == 0] = 1.0  # an all-zero row scores 0 against everything
        self.matrix = (matrix / norms[:, None]).astype(np.float32, copy=False)
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, item_id: str) -> int | None:
        if self._positions is None:
            self._positions = {item_id: i for i, item_id in enumerate(self.ids)}
        return self._positions.get(item_id)

    def search(
        self,
        query: Sequence[float] | np.ndarray,
        n: int,
        *,
        skip_id: str | None = None,
        prefix: str | None = None,
    ) -> list[tuple[str, float]]:
        """The ``n`` best (id, cosine similarity) pairs, best first.

        ``prefix`` keeps ids that start with it, literally; ``skip_id`` leaves one id out.
        """
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dimensions:
            raise DimensionMismatchError(
                f"Query vector has {vector.shape[0]} dimensions; "
                f"the collection holds {self.dimensions}-dimensional vectors"
            )
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise VibesError("Query vector is all zeros or not finite; it matches nothing")
        scores = self.matrix @ (vector / norm)

        candidates: np.ndarray | None = None
        if prefix:
            candidates = np.fromiter(
                (i for i, item_id in enumerate(self.ids) if item_id.startswith(prefix)),
                dtype=np.int64,
            )
        if skip_id is not None:
            skipped = self.position(skip_id)
            if skipped is not None:
                if candidates is None:
                    candidates = np.arange(len(self.ids))
                candidates = candidates[candidates != skipped]
        if candidates is not None:
            scores = scores[candidates]

        k = min(n, scores.shape[0])
        if k <= 0:
            return []
        if k < scores.shape[0]:
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(scores.shape[0])
        top = top[np.argsort(-scores[top], kind="stable")]
        positions = top if candidates is None else candidates[top]
        return [(self.ids[p], float(scores[t])) for p, t in zip(positions, top)]

"""The on-disk vector format shared with ``llm``: little-endian float32, packed."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions that need it: `vibes --help` stays instant.


def encode(vector: Any) -> bytes:
    """Pack a vector (a numpy array or a sequence of floats) as little-endian float32."""
    if hasattr(vector, "astype"):  # numpy array: no per-element Python work
        return vector.astype("<f4", copy=False).tobytes()
    return struct.pack("<" + "f" * len(vector), *vector)


def decode_array(blob: bytes) -> np.ndarray:
    """Unpack little-endian float32 bytes into a float32 numpy array (native order)."""
    import numpy as np

    if len(blob) % 4:
        raise ValueError(f"a vector blob must be a multiple of 4 bytes, got {len(blob)}")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32, copy=False)


def blobs_to_matrix(
    ids: Sequence[str], blobs: Sequence[bytes], dimensions: int | None
) -> np.ndarray:
    """Many vectors as one (n, d) float32 array, decoded in one pass rather than row by row.

    ``dimensions`` None takes the first vector's length. A vector of another length raises
    :class:`~vibes.errors.DimensionMismatchError` naming its item.
    """
    import numpy as np

    from .errors import DimensionMismatchError

    if not ids:
        return np.empty((0, dimensions or 0), dtype=np.float32)
    if dimensions is None:
        dimensions = len(blobs[0] or b"") // 4
    # A bytearray, so the matrix over it can be written (scaled in place by its reader).
    buffer = bytearray().join(blob or b"" for blob in blobs)
    if len(buffer) != len(ids) * dimensions * 4 or dimensions == 0:
        for item_id, blob in zip(ids, blobs):
            if blob is None or len(blob) != dimensions * 4 or not blob:
                size = 0 if blob is None else len(blob) // 4
                raise DimensionMismatchError(
                    f"Stored item {item_id!r} has a {size}-dimensional vector; "
                    f"the collection holds {dimensions}-dimensional ones"
                )
    matrix = np.frombuffer(buffer, dtype="<f4").reshape(len(ids), dimensions)
    return matrix.astype(np.float32, copy=False)


def content_hash(content: str | bytes) -> bytes:
    """The 16-byte MD5 digest of the content (UTF-8 for text), as ``llm`` stores it."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    return hashlib.md5(content).digest()

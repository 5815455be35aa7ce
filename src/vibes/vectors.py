"""The on-disk vector format shared with ``llm``: little-endian float32, packed."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence


def encode(vector: Sequence[float]) -> bytes:
    """Pack a vector as little-endian float32 bytes."""
    tobytes = getattr(vector, "astype", None)
    if tobytes is not None:  # numpy array: no per-element Python work
        return vector.astype("<f4", copy=False).tobytes()
    return struct.pack("<" + "f" * len(vector), *vector)


def decode(blob: bytes) -> list[float]:
    """Unpack little-endian float32 bytes into a list of floats."""
    if len(blob) % 4:
        raise ValueError(f"a vector blob must be a multiple of 4 bytes, got {len(blob)}")
    return list(struct.unpack("<" + "f" * (len(blob) // 4), blob))


def content_hash(content: str | bytes) -> bytes:
    """The 16-byte MD5 digest of the content (UTF-8 for text), as ``llm`` stores it."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    return hashlib.md5(content).digest()

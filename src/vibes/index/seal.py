"""Seals of index files: proof that a file is the one vibes saved, checked before use.

The native HNSW library trusts the bytes it maps: a file damaged on disk can make it
return nonsense (which re-scoring catches) or crash the process on a broken link (which
nothing after the fact can catch). So when an index file is saved, its size, modification
time and CRC-32 are recorded with it. Opening it compares the size and time (one stat); a
file whose time changed (copied, touched, or written into) is read once in full to check
its CRC before the library sees it. Reading is streamed, so memory stays flat. A file
whose bytes pass is given its sealed time back, so that the full read happens once after
a copy (``cp -r``, rsync without ``-t``), not on every open.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

_CHUNK = 1 << 20


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def make_seal(path: Path) -> str:
    """The seal of the file at ``path`` as saved now."""
    status = os.stat(path)
    return f"{status.st_size}:{status.st_mtime_ns}:{_crc32(path):08x}"


def check_seal(path: Path, seal: str | None) -> str | None:
    """Why the file at ``path`` is not the one sealed, or None when it is (or when it
    carries no seal: files saved before seals existed are judged by re-scoring alone)."""
    if not seal:
        return None
    try:
        size_text, mtime_text, crc_text = seal.split(":")
        size, mtime, crc = int(size_text), int(mtime_text), int(crc_text, 16)
    except ValueError:
        return "file's recorded seal is unreadable"
    status = os.stat(path)
    if status.st_size != size:
        return f"file is {status.st_size:,} bytes, not the {size:,} it was saved with"
    if status.st_mtime_ns == mtime:
        return None
    if _crc32(path) != crc:
        return "file was changed since it was saved (its checksum differs)"
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    ):
        return None  # written into while read: whatever it holds now, the next open checks
    try:
        # The bytes are the sealed ones: the sealed time says so again, for the next open.
        # (vibes never writes a file in place: a new one has a new name and seal.)
        os.utime(path, ns=(status.st_atime_ns, mtime))
    except OSError:
        pass  # not ours to change (a read-only copy): checked in full on every open
    return None

"""Files under directories, matched by glob patterns (``**`` recurses), as items."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..collection import Item
from ..errors import InputError

DEFAULT_ENCODINGS = ("utf-8", "latin-1")


def _matches(directory: str, pattern: str) -> Iterator[tuple[Path, Path]]:
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"Not a directory: {directory}")
    for path in sorted(root.glob(pattern)):
        if path.is_file():
            yield root, path


def count_files(patterns: Sequence[tuple[str, str]]) -> int:
    """How many files the (directory, glob) pairs match."""
    return sum(1 for directory, pattern in patterns for _ in _matches(directory, pattern))


def read_files(
    patterns: Sequence[tuple[str, str]],
    *,
    encodings: Sequence[str] = (),
    binary: bool = False,
    prefix: str = "",
    prepend: str | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[Item]:
    """One item per matched file: id = path relative to its directory (with ``/``).

    Text is decoded with the first of ``encodings`` that fits (default: UTF-8, then
    Latin-1); a file that fits none is an error. Empty files are passed to ``on_skip``.
    """
    encodings = tuple(encodings) or DEFAULT_ENCODINGS
    for root, path in (m for directory, pattern in patterns for m in _matches(directory, pattern)):
        item_id = prefix + path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(f"Cannot read {path}: {error.strerror}") from None
        if not data.strip():
            if on_skip is not None:
                on_skip(str(path), "empty")
            continue
        if binary:
            yield Item(item_id, data)
            continue
        for encoding in encodings:
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
            except LookupError:
                raise InputError(f"Unknown encoding: {encoding}") from None
        else:
            raise InputError(f"{path}: not valid text in {', '.join(encodings)}")
        yield Item(item_id, prepend + text if prepend else text)

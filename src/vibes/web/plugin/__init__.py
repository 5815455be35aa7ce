"""vibes as a Datasette plugin, found through Datasette's entry point (``vibes``).

- every connection Datasette opens gets vibes' SQL functions (:mod:`vibes.sqlfunctions`);
- ``/-/vibes`` lists the collections of every database, ``/-/vibes.json`` as JSON;
- ``/-/vibes/COLLECTION`` is a search page (query box, mode, filters, results with score,
  snippet, metadata, thumbnails and links to the rows);
- ``/-/vibes/COLLECTION/search.json?q=...`` answers what ``vibes similar`` prints
  (:mod:`vibes.web.api`), errors as 4xx JSON;
- ``/-/vibes/COLLECTION/ask.json?q=QUESTION`` answers what ``vibes ask --json`` prints
  (the search page's Ask button shows the same answer with its sources);
- ``/-/vibes/COLLECTION/clusters`` shows the clustering ``vibes cluster --store`` saved
  (names, sizes, first members; ``.json`` too), and search results name their cluster;
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
from collections.abc import Callable, Iterator
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


#: With the ``batch`` setting (``vibes serve --batch``), concurrent API searches with the
#: same options share one model call.
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


def _setting(datasette: Any, name: str) -> bool:
    """A setting of the plugin's configuration (``write``, ``ask``, ``batch``)."""
    return bool((datasette.plugin_config("vibes") or {}).get(name))


def _sql_time_limit(datasette: Any) -> float:
    """Seconds a caller's SQL (``where``) may run: Datasette's own limit for SQL."""
    try:
        return max(float(datasette.setting("sql_time_limit_ms")) / 1000, 0.001)
    except (TypeError, ValueError):
        return 1.0


def _writable(datasette: Any, name: str) -> bool:
    if not _setting(datasette, "write"):
        return False
    try:
        return bool(datasette.get_database(name).is_mutable)
    except KeyError:  # Datasette's own internal database
        return False


def _vibes_database(datasette: Any, name: str, path: str) -> Any:
    databases = _databases.setdefault(datasette, _Databases())
    return databases.get(name, path, not _writable(datasette, name))


def _has_collections(path: str) -> bool:
    """Whether a file holds the ``collections`` and ``embeddings`` tables (read-only)."""
    from ...store.sqlite import readonly_uri

    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True)
        try:
            names = {row[0] for row in conn.execute("select name from sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return {"collections", "embeddings"} <= names


def _vibes_files(datasette: Any, visible: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """(name, path) of the database files that hold collections, in Datasette's order,
    among the ``visible`` ones (all when None)."""
    for name, path in page.database_files(datasette):
        if (visible is None or name in visible) and _has_collections(path):
            yield name, path


def _locate(
    datasette: Any, collection: str, database: str | None, visible: set[str] | None = None
) -> tuple[str, Any, Any]:
    """(database name, vibes Database, Collection) for ``collection``: in ``database``
    when named, else in the first database that has it, among the ``visible`` ones (all
    when None). Runs on a worker thread."""
    if database is not None:
        served = dict(page.database_files(datasette))
        if database not in served or (visible is not None and database not in visible):
            raise api.ApiError(404, f"No database {database[:80]!r} here")
        visible = {database}
    problems = []
    for name, path in _vibes_files(datasette, visible):
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


async def _permitted(
    datasette: Any, actor: Any, action: str, database: str | None = None, table: str | None = None
) -> bool:
    """Whether Datasette lets ``actor`` do ``action`` (on the database, or its table):
    Datasette 1.0's ``allowed``, or 0.6x's ``permission_allowed`` (default allow)."""
    if hasattr(datasette, "allowed"):
        from datasette.resources import DatabaseResource, TableResource

        resource: Any = None
        if table is not None and database is not None:
            resource = TableResource(database, table)
        elif database is not None:
            resource = DatabaseResource(database)
        return bool(await datasette.allowed(action=action, resource=resource, actor=actor))
    target: Any = (database, table) if table is not None else database
    return bool(await datasette.permission_allowed(actor, action, target, default=True))


async def _allowed(datasette: Any, request: Any, database: str) -> bool:
    actor = request.actor
    return (
        await _permitted(datasette, actor, "view-instance")
        and await _permitted(datasette, actor, "view-database", database)
        and await _permitted(datasette, actor, "view-table", database, "embeddings")
    )


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return Response(
        body, status=status, headers=headers or {}, content_type="application/json; charset=utf-8"
    )


def _error(error: api.ApiError) -> Response:
    return _json(error.to_dict(), status=error.status)


async def _error_page(datasette: Any, request: Any, problem: api.ApiError) -> Response:
    """An HTML page saying what was wrong, with its status."""
    return Response.html(
        await datasette.render_template(
            "vibes_error.html", {"error": problem.message, "status": problem.status}, request
        ),
        status=problem.status,
    )


def _params(request: Any) -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args.keys()}


async def _visible(datasette: Any, request: Any) -> set[str]:
    """The databases whose embeddings the request's actor may see."""
    return {
        name
        for name, _ in page.database_files(datasette)
        if await _allowed(datasette, request, name)
    }


async def _collection_for(
    datasette: Any, request: Any, params: dict[str, list[str]]
) -> tuple[str, Any, Any]:
    """The request's collection (the route's, percent-decoded) among the databases its
    actor may see, or :class:`api.ApiError` (404: a collection elsewhere is not told
    apart from none)."""
    databases = params.get("database") or []
    if len(databases) > 1:
        raise api.ApiError(400, "database was given more than once: give it once")
    visible = await _visible(datasette, request)
    return await _in_thread(
        _locate,
        datasette,
        urllib.parse.unquote(request.url_vars["collection"]),
        databases[0] if databases else None,
        visible,
    )


async def _searchable(
    datasette: Any, request: Any, params: dict[str, list[str]]
) -> tuple[str, Any, bool]:
    """The request's database name and collection, and whether its actor may give SQL
    (``where``): only where Datasette lets them run SQL on that database."""
    name, _, collection = await _collection_for(datasette, request, params)
    allow_where = await _permitted(datasette, request.actor, "execute-sql", name)
    return name, collection, allow_where


# -- routes ------------------------------------------------------------------------------


async def search_json(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION/search.json``: the hits as ``vibes similar`` prints them."""
    params = _params(request)
    try:
        name, collection, allow_where = await _searchable(datasette, request, params)
        search = api.parse_search(params, allow_where=allow_where)
        found = await _in_thread(
            functools.partial(
                api.run_search,
                collection,
                search,
                batcher=_BATCHER if _setting(datasette, "batch") else None,
                time_limit=_sql_time_limit(datasette),
            )
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


async def ask_json(datasette: Any, request: Any, send: Any, receive: Any) -> Response | None:
    """``/-/vibes/COLLECTION/ask.json?q=QUESTION``: what ``vibes ask --json`` prints;
    with ``stream=1``, server-sent events as the model writes (see
    :func:`vibes.web.api.answer_events`)."""
    params = _params(request)
    try:
        name, collection, allow_where = await _searchable(datasette, request, params)
        if not _setting(datasette, "ask"):
            raise api.ApiError(403, page.ASK_OFF)
        question = api.parse_ask(params, allow_where=allow_where)
        # Retrieval and packing (and a failure to reach the model) happen here, before
        # a stream starts, so that they answer with a status of their own.
        answer = await _in_thread(
            functools.partial(
                api.run_ask,
                collection,
                question,
                stream=question.stream,
                time_limit=_sql_time_limit(datasette),
            )
        )
    except Exception as error:
        return _error(api.error_for(error))
    if not question.stream:
        return _json(answer.to_dict())
    # The sources event also says where each source is: its label and its row's page.
    where = {
        source.n: {
            "label": source.label,
            "row": page.row_url(datasette, name, collection.id, source.id),
        }
        for source in answer.sources
    }

    def located(event: str, data: Any) -> Any:
        if event == "sources":
            return [{**source, **where.get(source["n"], {})} for source in data]
        return data

    await _send_events(send, receive, answer, located)
    return None


async def _send_events(
    send: Any, receive: Any, answer: Any, located: Callable[[str, Any], Any]
) -> None:
    """Send ``answer``'s events (read on a worker thread) as ``text/event-stream``; a
    client that disconnects stops the model's answer being read (and paid for)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
    gone = threading.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()
        events.put_nowait(None)

    watcher = asyncio.ensure_future(watch())

    def produce() -> None:
        try:
            for event in api.answer_events(answer, gone.is_set):
                loop.call_soon_threadsafe(events.put_nowait, event)
        finally:
            loop.call_soon_threadsafe(events.put_nowait, None)

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    _EXECUTOR.submit(produce)
    try:
        while (event := await events.get()) is not None and not gone.is_set():
            name, data = event
            data = located(name, data)
            line = f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        gone.set()
        watcher.cancel()


async def search_page(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION``: the search page."""
    params = _params(request)
    try:
        name, collection, allow_where = await _searchable(datasette, request, params)
        context = await _in_thread(
            functools.partial(
                page.search_context,
                datasette,
                name,
                collection,
                params,
                allow_where,
                can_ask=_setting(datasette, "ask"),
                time_limit=_sql_time_limit(datasette),
            )
        )
    except Exception as error:
        return await _error_page(datasette, request, api.error_for(error))
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
        _, _, collection = await _collection_for(datasette, request, params)
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


async def clusters_page(datasette: Any, request: Any) -> Response:
    """``/-/vibes/COLLECTION/clusters`` (``.json`` too): the stored clustering."""
    params = _params(request)
    as_json = request.url_vars.get("format") == ".json"
    try:
        unknown = set(params) - {"database"}
        if unknown:
            raise api.ApiError(400, f"Unknown parameter {sorted(unknown)[0][:40]!r}")
        name, _, collection = await _collection_for(datasette, request, params)
        context = await _in_thread(page.clusters_context, datasette, name, collection)
    except Exception as error:
        problem = api.error_for(error)
        if as_json:
            return _error(problem)
        return await _error_page(datasette, request, problem)
    if as_json:
        return _json(context["clusters"] or [])
    return Response.html(await datasette.render_template("vibes_clusters.html", context, request))


def _listing(datasette: Any) -> list[dict[str, Any]]:
    """Every database's collections, or why it cannot be read. Runs on a worker thread."""
    found = []
    for name, path in _vibes_files(datasette):
        entry: dict[str, Any] = {"database": name, "collections": []}
        try:
            db = _vibes_database(datasette, name, path)
            for info in db.collections():
                row = info.to_dict()
                row["search"] = page.search_url(datasette, name, info.name)
                row["api"] = page.search_url(datasette, name, info.name, endpoint="search.json")
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
        (r"^/-/vibes/(?P<collection>[^/]+)/ask\.json$", ask_json),
        (r"^/-/vibes/(?P<collection>[^/]+)/image$", image),
        (r"^/-/vibes/(?P<collection>[^/]+)/clusters(?P<format>\.json)?$", clusters_page),
        (r"^/-/vibes/(?P<collection>[^/]+)/?$", search_page),
    ]


#: What ``--cors`` adds to vibes' own answers, as Datasette adds to its JSON.
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-headers", b"Authorization, Content-Type"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-expose-headers", b"x-vibes-warnings"),
    (b"access-control-max-age", b"3600"),
]


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    """With Datasette's ``cors``, vibes' routes answer pages of other origins too."""

    def wrap(app: Any) -> Any:
        async def with_cors(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "") if scope.get("type") == "http" else ""
            if not datasette.cors or not path.startswith("/-/vibes"):
                await app(scope, receive, send)
                return

            async def send_with_cors(message: Any) -> None:
                if message["type"] == "http.response.start":
                    names = {name for name, _ in _CORS}
                    headers = [h for h in message.get("headers", []) if h[0].lower() not in names]
                    message = {**message, "headers": headers + _CORS}
                await send(message)

            await app(scope, receive, send_with_cors)

        return with_cors

    return wrap


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    register(conn, readonly=not _writable(datasette, database))


def warm_up(datasette: Any) -> None:
    """Load each collection's model and vectors (or index) with one search, so that the
    first user's search is as quick as the rest."""
    from ...items import Query

    for name, path in _vibes_files(datasette):
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

"""What the search page and the row page's panel show, as plain data for the templates
(which escape every text): runs on worker threads, never touches the event loop."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from datasette.utils import tilde_encode

from ...items import DocumentMatch, Match
from .. import api, images

#: Marks around the query's words in snippets: private-use characters no text holds, so
#: the page can split on them after escaping (the JSON API keeps ``**``).
MARKS = ("\ue000", "\ue001")
#: Characters of an item's text shown when it has no snippet.
PREVIEW_CHARS = 400
#: Pixels of a thumbnail's longer side.
THUMBNAIL_SIZE = 192
#: Similar items shown on a row page.
PANEL_ITEMS = 10


def search_url(
    datasette: Any, database: str, collection: str, *, json_api: bool = False, **params: str
) -> str:
    """The search page (or API) of ``collection``, naming the database when Datasette
    serves more than one."""
    path = "/-/vibes/" + urllib.parse.quote(collection, safe="")
    if json_api:
        path += "/search.json"
    served = [name for name, db in datasette.databases.items() if db.path and not db.is_memory]
    if len(served) > 1:
        params = {**params, "database": database}
    query = urllib.parse.urlencode(params)
    return str(datasette.urls.path(path)) + (f"?{query}" if query else "")


def image_url(datasette: Any, database: str, collection: str, item_id: str) -> str:
    path = "/-/vibes/" + urllib.parse.quote(collection, safe="") + "/image"
    query = urllib.parse.urlencode({"id": item_id, "size": THUMBNAIL_SIZE, "database": database})
    return f"{datasette.urls.path(path)}?{query}"


def row_url(datasette: Any, database: str, collection_id: int, item_id: str) -> str:
    """The Datasette row page of an item (``embeddings`` is keyed by collection and id)."""
    row_path = f"{collection_id},{tilde_encode(item_id)}"
    return str(datasette.urls.row(database, "embeddings", row_path))


def marked(text: str) -> list[tuple[str, bool]]:
    """``text`` with :data:`MARKS` as (piece, is it a query word) pairs."""
    pieces: list[tuple[str, bool]] = []
    for number, part in enumerate(text.split(MARKS[0])):
        word, _, rest = part.partition(MARKS[1]) if number else ("", "", part)
        if word:
            pieces.append((word, True))
        if rest:
            pieces.append((rest, False))
    return pieces


def _preview(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


def _metadata(metadata: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not metadata:
        return []
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in metadata.items()
    ]


def _hit(
    datasette: Any, database: str, collection: Any, hit: Match, with_image: set[str]
) -> dict[str, Any]:
    lines = f"lines {hit.lines[0]}–{hit.lines[1]}" if hit.lines else ""
    return {
        "id": hit.id,
        "score": f"{hit.score:.4f}",
        "row": row_url(datasette, database, collection.id, hit.id),
        "like": search_url(datasette, database, collection.name, id=hit.id),
        "snippet": marked(hit.snippet) if hit.snippet else None,
        "text": _preview(hit.content),
        "metadata": _metadata(hit.metadata),
        "document": hit.document,
        "lines": lines,
        "image": image_url(datasette, database, collection.name, hit.id)
        if hit.id in with_image
        else None,
    }


def _images(collection: Any, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` whose item is a stored image."""
    stored = collection.database.store.get_items(collection.id, list(ids))
    return {key for key, item in stored.items() if images.image_type(item.content_blob)}


def search_context(
    datasette: Any,
    database: str,
    collection: Any,
    params: dict[str, list[str]],
    allow_where: bool,
) -> dict[str, Any]:
    """The search page's template context: the form as the request filled it, and the
    results or the problem (``status`` is the HTTP status to answer with)."""
    single = {name: (values[0] if values else "") for name, values in params.items()}
    fulltext = collection.fulltext_status().get("state") == "ready"
    context: dict[str, Any] = {
        "database": database,
        "collection": collection.name,
        "model": collection.model_id,
        "count": collection.count(),
        "fulltext": fulltext,
        "form": {
            "q": single.get("q", ""),
            "id": single.get("id", ""),
            "mode": single.get("mode", "vector"),
            "n": single.get("n", "10"),
            "filters": [value for value in params.get("filter", []) if value],
            "documents": single.get("documents", "") not in ("", "0", "false", "off", "no"),
            "exact": single.get("exact", "") not in ("", "0", "false", "off", "no"),
        },
        "action": search_url(datasette, database, collection.name).partition("?")[0],
        "api": search_url(
            datasette,
            database,
            collection.name,
            json_api=True,
            **{name: values[0] for name, values in params.items() if values and values[0]},
        ),
        "multiple_databases": "database=" in search_url(datasette, database, collection.name),
        "results": None,
        "documents": None,
        "warnings": [],
        "error": None,
        "status": 200,
    }
    # Empty fields of the form are not options.
    asked = {name: [v for v in values if v] for name, values in params.items()}
    asked = {name: values for name, values in asked.items() if values}
    try:
        request = api.parse_search(asked, allow_where=allow_where)
        if request.empty:
            return context
        # Snippets mark the query's words: a search by an item or an expression has none.
        has_words = request.query is not None and isinstance(request.query.text, str)
        snippets: dict[str, Any] = {"snippets": True, "snippet_marks": MARKS} if has_words else {}
        found = api.run_search(collection, request, **snippets)
    except Exception as error:
        problem = api.error_for(error)
        context["error"], context["status"] = problem.message, problem.status
        return context
    context["warnings"] = list(found.warnings)
    if request.options.get("documents"):
        ids = [chunk.id for document in found for chunk in document.chunks]
        with_image = _images(collection, ids)
        context["documents"] = [
            {
                "id": document.id,
                "score": f"{document.score:.4f}",
                "metadata": _metadata(document.metadata),
                "chunks": [
                    _hit(datasette, database, collection, chunk, with_image)
                    for chunk in document.chunks
                ],
            }
            for document in found
            if isinstance(document, DocumentMatch)
        ]
    else:
        with_image = _images(collection, [hit.id for hit in found])
        context["results"] = [
            _hit(datasette, database, collection, hit, with_image) for hit in found
        ]
        context["chunked"] = any(hit.document for hit in found)
    return context


def similar_panel(datasette: Any, database: str, collection: Any, item_id: str) -> dict[str, Any]:
    """The row page's panel: the item's precomputed related items when ``vibes related``
    made them, else its nearest items, searched now."""
    from ...analysis.related import read_related
    from ...errors import VibesError

    panel: dict[str, Any] = {
        "title": f"Similar items in {collection.name}",
        "search": search_url(datasette, database, collection.name, id=item_id),
    }
    pairs: list[tuple[str, float]] | None = None
    if collection.database.store.related_state(collection.id) is not None:
        try:
            pairs, notes = read_related(collection, item_id, PANEL_ITEMS)
            panel["note"] = " ".join(["Precomputed by 'vibes related'.", *notes])
        except VibesError:
            pairs = None  # not among the related items (added since): search instead
    if pairs is None:
        found = collection.search(_query(item_id), PANEL_ITEMS)
        pairs = [(hit.id, hit.score) for hit in found]
    stored = collection.database.store.get_items(collection.id, [other for other, _ in pairs])
    panel["items"] = [
        {
            "id": other,
            "score": f"{score:.4f}",
            "row": row_url(datasette, database, collection.id, other),
            "text": _preview(stored[other].content) if other in stored else "",
        }
        for other, score in pairs
    ]
    return panel


def _query(item_id: str) -> Any:
    from ...items import Query

    return Query(id=item_id)

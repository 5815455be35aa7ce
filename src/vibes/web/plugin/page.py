"""What the search page and the row page's panel show, as plain data for the templates
(which escape every text): runs on worker threads, never touches the event loop."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from datasette.utils import tilde_encode

from ...items import DocumentMatch, Match
from .. import api, images

#: Why a question is refused where asking is off: it spends the server's LLM.
ASK_OFF = (
    "Asking is off on this server: an answer costs its LLM. 'vibes serve' turns it on "
    "(unless --no-ask); in Datasette, set the vibes plugin's 'ask' to true"
)

#: Marks around the query's words in snippets: private-use characters no text holds, so
#: the page can split on them after escaping (the JSON API keeps ``**``).
MARKS = ("\ue000", "\ue001")
#: Characters of an item's text shown when it has no snippet.
PREVIEW_CHARS = 400
#: Pixels of a thumbnail's longer side.
THUMBNAIL_SIZE = 192
#: Similar items shown on a row page.
PANEL_ITEMS = 10


def database_files(datasette: Any) -> list[tuple[str, str]]:
    """(name, path) of every database file Datasette serves, in its order."""
    return [
        (name, db.path)
        for name, db in datasette.databases.items()
        if db.path and not db.is_memory and name != "_internal"
    ]


def collection_path(collection: str) -> str:
    """The path of ``collection``'s search page (its name percent-encoded, slashes too)."""
    return "/-/vibes/" + urllib.parse.quote(collection, safe="")


def search_url(
    datasette: Any,
    database: str,
    collection: str,
    *,
    endpoint: str = "",
    params: Mapping[str, str] | None = None,
) -> str:
    """The search page of ``collection`` (or its ``endpoint``: ``search.json``,
    ``ask.json``) with ``params``, naming the database when Datasette serves more than
    one."""
    path = collection_path(collection)
    if endpoint:
        path += "/" + endpoint
    query_params = {name: value for name, value in (params or {}).items() if name != "database"}
    if len(database_files(datasette)) > 1:
        query_params["database"] = database
    query = urllib.parse.urlencode(query_params)
    return str(datasette.urls.path(path)) + (f"?{query}" if query else "")


def image_url(datasette: Any, database: str, collection: str, item_id: str) -> str:
    """The thumbnail of a stored image."""
    params = {"id": item_id, "size": str(THUMBNAIL_SIZE)}
    return search_url(datasette, database, collection, endpoint="image", params=params)


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
    datasette: Any,
    database: str,
    collection: Any,
    hit: Match,
    with_image: set[str],
    clusters: dict[str, str],
) -> dict[str, Any]:
    lines = f"lines {hit.lines[0]}–{hit.lines[1]}" if hit.lines else ""
    return {
        "id": hit.id,
        "score": f"{hit.score:.4f}",
        "row": row_url(datasette, database, collection.id, hit.id),
        "like": search_url(datasette, database, collection.name, params={"id": hit.id}),
        "snippet": marked(hit.snippet) if hit.snippet else None,
        "text": _preview(hit.content),
        "metadata": _metadata(hit.metadata),
        "document": hit.document,
        "lines": lines,
        "image": image_url(datasette, database, collection.name, hit.id)
        if hit.id in with_image
        else None,
        "cluster": clusters.get(hit.id),
    }


#: Members shown per cluster on the clusters page.
CLUSTER_MEMBERS = 5

_assignments: dict[tuple[str, int], tuple[int | None, dict[str, int]]] = {}
_assignments_lock = threading.Lock()


def cluster_names(collection: Any) -> dict[str, str]:
    """Each item's cluster name in the collection's stored clustering (``vibes cluster
    --store``), or {} without one. Read once per clustering, then kept."""
    store = collection.database.store
    clustering = store.clustering(collection.id)
    if clustering is None:
        return {}
    key = (store.location, collection.id)
    with _assignments_lock:
        cached = _assignments.get(key)
        if cached is None or cached[0] != clustering.created:
            cached = _assignments[key] = (
                clustering.created,
                store.cluster_assignments(collection.id),
            )
    names = {
        record.cluster: record.name or f"cluster {record.cluster}" for record in clustering.clusters
    }
    return {item: names.get(number, "") for item, number in cached[1].items()}


def clusters_context(datasette: Any, database: str, collection: Any) -> dict[str, Any]:
    """The clusters page: each stored cluster's name, summary, size and first members."""
    store = collection.database.store
    clustering = store.clustering(collection.id)
    context: dict[str, Any] = {
        "database": database,
        "collection": collection.name,
        "search": search_url(datasette, database, collection.name),
        "clusters": None,
    }
    if clustering is None:
        return context
    members: dict[int, list[str]] = {}
    for item, number in sorted(store.cluster_assignments(collection.id).items()):
        members.setdefault(number, []).append(item)
    shown = [item for items in members.values() for item in items[:CLUSTER_MEMBERS]]
    stored = store.get_items(collection.id, shown)
    context["clusters"] = [
        {
            "cluster": record.cluster,
            "name": record.name or f"cluster {record.cluster}",
            "summary": record.summary,
            "size": record.size,
            "members": [
                {
                    "id": item,
                    "row": row_url(datasette, database, collection.id, item),
                    "text": _preview(stored[item].content) if item in stored else "",
                }
                for item in members.get(record.cluster, [])[:CLUSTER_MEMBERS]
            ],
        }
        for record in sorted(clustering.clusters, key=lambda record: -record.size)
    ]
    return context


def _ticked(value: str) -> bool:
    """Whether a checkbox of the form reads as ticked (any value but an empty or false
    one: what parse_search takes as false)."""
    return value not in ("", "0", "false", "off", "no")


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
    *,
    can_ask: bool = False,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """The search page's template context: the form as the request filled it, and the
    results, the answer (``ask``, where ``can_ask``) or the problem (``status`` is the
    HTTP status to answer with). A ``where`` runs for at most ``time_limit`` seconds."""
    single = {name: (values[0] if values else "") for name, values in params.items()}
    context: dict[str, Any] = {
        "database": database,
        "collection": collection.name,
        "model": collection.model_id,
        "count": collection.count(),
        # Whether words and both modes can answer (cheap: the state, not its counts).
        "fulltext": collection.database.fulltext.problem(collection.record) is None,
        "form": {
            "q": single.get("q", ""),
            "id": single.get("id", ""),
            "mode": single.get("mode", "vector"),
            "n": single.get("n", "10"),
            "filters": [value for value in params.get("filter", []) if value],
            "documents": _ticked(single.get("documents", "")),
            "exact": _ticked(single.get("exact", "")),
        },
        "action": str(datasette.urls.path(collection_path(collection.name))),
        "api": search_url(
            datasette,
            database,
            collection.name,
            endpoint="ask.json" if params.get("ask") else "search.json",
            params={
                name: values[0]
                for name, values in params.items()
                if values and values[0] and name not in _not_for(bool(params.get("ask")))
            },
        ),
        "multiple_databases": len(database_files(datasette)) > 1,
        "clusters": search_url(datasette, database, collection.name, endpoint="clusters")
        if collection.database.store.clustering(collection.id) is not None
        else None,
        "results": None,
        "documents": None,
        "answer": None,
        "ask_url": search_url(datasette, database, collection.name, endpoint="ask.json"),
        "can_ask": can_ask,
        "ask_fields": sorted(api.ASK_PARAMETERS),
        "warnings": [],
        "error": None,
        "status": 200,
    }
    # Empty fields of the form are not options.
    asked = {name: [v for v in values if v] for name, values in params.items()}
    asked = {name: values for name, values in asked.items() if values}
    if asked.pop("ask", None) is not None:
        context["form"]["ask"] = True
        if not can_ask:
            context["error"], context["status"] = ASK_OFF, 403
            return context
        return _answer(datasette, database, collection, asked, allow_where, time_limit, context)
    try:
        request = api.parse_search(asked, allow_where=allow_where)
        if request.empty:
            return context
        # Snippets mark the query's words: a search by an item or an expression has none.
        has_words = request.query is not None and isinstance(request.query.text, str)
        snippets: dict[str, Any] = {"snippets": True, "snippet_marks": MARKS} if has_words else {}
        found = api.run_search(collection, request, time_limit=time_limit, **snippets)
    except Exception as error:
        problem = api.error_for(error)
        context["error"], context["status"] = problem.message, problem.status
        return context
    context["warnings"] = list(found.warnings)
    clusters = cluster_names(collection)
    if request.options.get("documents"):
        ids = [chunk.id for document in found for chunk in document.chunks]
        with_image = _images(collection, ids)
        context["documents"] = [
            {
                "id": document.id,
                "score": f"{document.score:.4f}",
                "metadata": _metadata(document.metadata),
                "chunks": [
                    _hit(datasette, database, collection, chunk, with_image, clusters)
                    for chunk in document.chunks
                ],
            }
            for document in found
            if isinstance(document, DocumentMatch)
        ]
    else:
        with_image = _images(collection, [hit.id for hit in found])
        context["results"] = [
            _hit(datasette, database, collection, hit, with_image, clusters) for hit in found
        ]
        context["chunked"] = any(hit.document for hit in found)
    return context


#: A citation in an answer: ``[3]``.
CITATION = re.compile(r"\[(\d+)\]")


def cited_pieces(answer: str) -> list[tuple[str, int | None]]:
    """``answer`` as (text, None) and (``[n]``, n) pieces, so that the page links each
    citation to its source after escaping the text."""
    pieces: list[tuple[str, int | None]] = []
    position = 0
    for found in CITATION.finditer(answer):
        if found.start() > position:
            pieces.append((answer[position : found.start()], None))
        pieces.append((found.group(0), int(found.group(1))))
        position = found.end()
    if position < len(answer):
        pieces.append((answer[position:], None))
    return pieces


def _not_for(asking: bool) -> set[str]:
    """The form's fields that a search (or a question) does not take: the page's one form
    serves both."""
    if asking:
        return {"ask"} | (set(api.PARAMETERS) - set(api.ASK_PARAMETERS))
    return {"ask"}


def _answer(
    datasette: Any,
    database: str,
    collection: Any,
    params: dict[str, list[str]],
    allow_where: bool,
    time_limit: float | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The page's context for a question: the answer with its citations linked to the
    numbered sources, each source linked to its row."""
    params = {name: values for name, values in params.items() if name not in _not_for(True)}
    try:
        question = api.parse_ask(params, allow_where=allow_where)
        found = api.run_ask(collection, question, time_limit=time_limit)
    except Exception as error:
        problem = api.error_for(error)
        context["error"], context["status"] = problem.message, problem.status
        return context
    cited = set(found.citations)
    context["warnings"] = list(found.warnings)
    context["answer"] = {
        "text": cited_pieces(found.answer) if found.answer is not None else None,
        "reason": found.reason,
        "model": found.model,
        "sources": [
            {
                "n": source.n,
                "label": source.label,
                "row": row_url(datasette, database, collection.id, source.id),
                "score": f"{source.score:.4f}",
                "text": _preview(source.text),
                "cited": source.n in cited,
            }
            for source in found.sources
        ],
    }
    return context


def similar_panel(datasette: Any, database: str, collection: Any, item_id: str) -> dict[str, Any]:
    """The row page's panel: the item's precomputed related items when ``vibes related``
    made them, else its nearest items, searched now."""
    from ...analysis.related import read_related
    from ...errors import VibesError

    panel: dict[str, Any] = {
        "title": f"Similar items in {collection.name}",
        "search": search_url(datasette, database, collection.name, params={"id": item_id}),
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

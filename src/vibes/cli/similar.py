"""``vibes similar``: the items nearest in meaning to an item, a text or a file."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from . import cli
from .options import (
    apply_key,
    database_option,
    emit_json_lines,
    emit_table,
    filter_options,
    key_option,
    mode_options,
    model_option,
    open_database,
    read_content,
    requested_model,
    search_mode,
)

if TYPE_CHECKING:
    from ..items import DocumentMatch, Match


@cli.command()
@click.argument("collection")
@click.argument("id", required=False)
@click.option("-c", "--content", help="Text to search for")
@click.option(
    "-i", "--input", "input_path", type=click.Path(allow_dash=True), help="File to search for"
)
@click.option("--binary", is_flag=True, help="Treat the input as binary data")
@click.option(
    "--expr",
    metavar="EXPRESSION",
    help="Search by vector arithmetic: terms joined by + and - ('germany + paris - "
    "france'); terms are texts, id:ITEM or file:PATH, weights as 0.5*term",
)
@click.option(
    "--keep-terms", is_flag=True, help="With --expr: keep the id: terms' own items in the results"
)
@click.option("-n", "--number", default=10, show_default=True, help="How many results")
@filter_options
@click.option("--min-score", type=float, help="Only results scoring at least this")
@click.option("--exact", is_flag=True, help="Exact search: bypass the approximate index")
@click.option("--documents", is_flag=True, help="Rank documents by their chunks")
@click.option(
    "--document-score",
    type=click.Choice(["max", "mean", "sum"]),
    default="max",
    show_default=True,
    help="With --documents: how chunk scores make a document's score",
)
@click.option(
    "--context", type=click.IntRange(min=0), default=0, help="Add N neighbouring chunks per hit"
)
@mode_options(
    default="vector",
    mode_help="vector (meaning, the default), text (words, BM25) or hybrid (both, fused)",
)
@click.option(
    "--fusion",
    type=click.Choice(["weighted", "rrf"]),
    default="weighted",
    show_default=True,
    help="Hybrid: a weighted sum of each leg's scaled scores, or reciprocal rank fusion",
)
@click.option(
    "--weight",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="Hybrid: the vector leg's share (the text leg gets the rest)",
)
@click.option("--depth", type=click.IntRange(min=1), help="Hybrid: hits each leg gives to fusion")
@click.option(
    "--fts-syntax", is_flag=True, help="Text: the query is FTS5 syntax (AND, OR, NEAR, prefix*)"
)
@click.option(
    "--snippets", is_flag=True, help="Add each hit's best matching fragment, words marked"
)
@click.option("--rerank", metavar="MODEL", help="Re-score the best hits with this re-ranker")
@click.option(
    "--rerank-depth",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="How many of the best hits the re-ranker scores",
)
@click.option("-p", "--plain", is_flag=True, help="Readable text instead of JSON lines")
@click.option("--table", is_flag=True, help="An aligned table instead of JSON lines")
@model_option
@key_option
@database_option
def similar(
    collection: str,
    id: str | None,
    content: str | None,
    input_path: str | None,
    binary: bool,
    expr: str | None,
    keep_terms: bool,
    number: int,
    filters: tuple[str, ...],
    prefix: str | None,
    where: str | None,
    min_score: float | None,
    exact: bool,
    documents: bool,
    document_score: str,
    context: int,
    mode: str | None,
    hybrid: bool,
    fusion: str,
    weight: float,
    depth: int | None,
    fts_syntax: bool,
    snippets: bool,
    rerank: str | None,
    rerank_depth: int,
    plain: bool,
    table: bool,
    model: str | None,
    key: str | None,
    database: str | None,
) -> None:
    """Items of COLLECTION most similar to ID, -c TEXT or -i FILE.

    One JSON object per line, best first: {"id", "score", "content", "metadata"}, as
    'llm similar' prints them; --plain prints them as 'llm similar --plain' does.

    --mode text searches the words of the query (any of them; BM25 ranks those holding
    more and rarer ones first), --hybrid fuses both rankings: each hit then says every
    leg's rank and score under "legs". --snippets adds "snippet", the best fragment of
    the stored text with the query's words **marked**.

    --expr searches by the sum of its terms' vectors (each of length 1 in a cosine
    collection), as word-vector tools do: 'king - man + woman'. An operator is a + or -
    after a space (hyphenated words stay whole); quote a term holding one. The items
    that id: terms name are left out of the results (they would top them) unless
    --keep-terms.

    \b
    Examples:
      vibes similar docs -c 'sqlite backup tools' | jq .id
      vibes similar docs README.md -n 3
      vibes similar docs -i question.txt --plain
      vibes similar docs -c 'backups' --table
      vibes similar docs -c 'backups' --filter 'year>=2020' --filter 'lang in en,fr'
      vibes similar docs -c 'backups' --where "content like '%sqlite%'" --min-score 0.3
      vibes similar docs -c 'install steps' --documents --context 1
      vibes similar docs -c 'ERR_CONNECTION_RESET' --mode text --snippets
      vibes similar docs -c 'how do I back up a database' --hybrid -n 5
      vibes similar docs -c 'backups' --hybrid --weight 0.8
      vibes similar docs -c 'backups' --hybrid --fusion rrf
      vibes similar docs -c 'backup NEAR/5 sqlite' --mode text --fts-syntax
      vibes similar docs -c 'backups' --hybrid --rerank my-cross-encoder
      vibes similar words --expr 'germany + paris - france' -n 5
      vibes similar docs --expr 'id:intro.md - "for beginners" + advanced' --documents
    """
    if number < 1:
        raise click.BadParameter("must be at least 1", param_hint="'-n' / '--number'")
    if id and (content is not None or input_path):
        raise click.UsageError("Give an ID or -c/-i content, not both")
    if plain and table:
        raise click.UsageError("Give --plain or --table, not both")
    mode = search_mode(mode, hybrid, "vector")
    if expr is not None:
        if id or content is not None or input_path:
            raise click.UsageError("Give --expr or an ID or -c/-i content, not both")
        if mode != "vector":
            raise click.UsageError("--expr searches by vector: it takes no --mode text or hybrid")
    elif keep_terms:
        raise click.UsageError("--keep-terms applies with --expr")
    if fts_syntax and mode == "vector":
        raise click.UsageError("--fts-syntax applies with --mode text or --hybrid")
    from ..items import Query

    db = open_database(database)
    # Naming another model than the collection's is refused (ModelMismatchError).
    target = db.collection(collection, requested_model(db, collection, model), create=False)
    if key is not None:
        apply_key(target.model(), key)
    search: Any = target.search
    if expr is not None:
        from functools import partial

        from ..analysis.arithmetic import expression_search

        query: Any = expr
        search = partial(expression_search, target, keep_terms=keep_terms)
    else:
        query = Query(id=id) if id else Query(text=read_content(content, input_path, binary))
    found = search(
        query,
        number,
        filters=filters,
        prefix=prefix,
        where=where,
        min_score=min_score,
        exact=exact,
        context=context,
        documents=documents,
        document_score=document_score,
        mode=mode,
        fusion=fusion,
        weight=weight,
        depth=depth,
        text_syntax=fts_syntax,
        snippets=snippets,
        rerank=rerank,
        rerank_depth=rerank_depth,
    )
    if documents:
        if plain:
            _plain_documents(found)
        elif table:
            _documents_table(found)
        else:
            emit_json_lines(document.to_dict() for document in found)
    elif plain:
        _plain(found)
    elif table:
        _table(found)
    else:
        emit_json_lines(result.to_dict() for result in found)


def _plain(found: Sequence[Match]) -> None:
    """What 'llm similar --plain' prints (the id and score, a blank line, the content and
    metadata indented, a blank line), with --context's chunks in place of the content."""
    for result in found:
        click.echo(f"{result.id} ({result.score})\n")
        if result.context:
            for chunk in result.context:
                lines = chunk.get("lines") or [None, None]
                where = f", lines {lines[0]}-{lines[1]}" if None not in lines else ""
                mark = " (this match)" if chunk["id"] == result.id else ""
                click.echo(f"  {chunk['id']}{where}{mark}:")
                if chunk.get("content"):
                    click.echo(textwrap.indent(chunk["content"], "    "))
        elif result.snippet:
            click.echo(textwrap.indent(result.snippet, "  "))
        elif result.content:
            click.echo(textwrap.indent(result.content, "  "))
        if result.metadata:
            click.echo(textwrap.indent(json.dumps(result.metadata), "  "))
        click.echo("")


def _plain_documents(found: Sequence[DocumentMatch]) -> None:
    for document in found:
        click.echo(f"{document.id} ({document.score:.4f})")
        for match in document.chunks:
            lines = f" lines {match.lines[0]}-{match.lines[1]}" if match.lines else ""
            click.echo(f"  {match.id} ({match.score:.4f}){lines}")
        click.echo("")


def _short(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _table(found: Sequence[Match]) -> None:
    rows: list[dict[str, Any]] = [
        {
            "id": result.id,
            "score": f"{result.score:.4f}",
            "content": _short(result.snippet or result.content),
            "metadata": json.dumps(result.metadata, ensure_ascii=False) if result.metadata else "",
            "lines": f"{result.lines[0]}-{result.lines[1]}" if result.lines else "",
        }
        for result in found
    ]
    columns = ["id", "score", "content", "metadata"]
    if any(row["lines"] for row in rows):
        columns.insert(2, "lines")
    emit_table(rows, columns)


def _documents_table(found: Sequence[DocumentMatch]) -> None:
    rows = [
        {
            "id": document.id,
            "score": f"{document.score:.4f}",
            "chunks": ", ".join(match.id for match in document.chunks),
            "metadata": json.dumps(document.metadata, ensure_ascii=False)
            if document.metadata
            else "",
        }
        for document in found
    ]
    emit_table(rows, ["id", "score", "chunks", "metadata"])

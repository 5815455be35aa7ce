"""``vibes embed``, ``vibes embed-multi`` and ``vibes delete``."""

from __future__ import annotations

import base64
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

from ..errors import InputError, VibesError
from . import Interrupted, cli
from .options import (
    apply_key,
    database_option,
    distance_option,
    key_option,
    model_option,
    open_database,
    parse_json_object,
    read_content,
    requested_model,
    stderr_is_terminal,
)

if TYPE_CHECKING:
    # click's progress bar class; click.progressbar() returns one (a type-only import).
    from click._termui_impl import ProgressBar

    from ..collection import Item
    from ..database import Database

OUTPUT_FORMATS = ("json", "blob", "base64", "hex")


def _write_vector(vector: list[float], format: str) -> None:
    from ..vectors import encode

    if format == "json":
        click.echo(json.dumps(vector))
    elif format == "blob":
        sys.stdout.buffer.write(encode(vector) + b"\n")  # as llm writes it
        sys.stdout.buffer.flush()
    elif format == "base64":
        click.echo(base64.b64encode(encode(vector)).decode("ascii"))
    else:
        click.echo(encode(vector).hex())


def _recording_ids(items: Iterable[Item], seen: dict[str | None, set[str]]) -> Iterator[Item]:
    """``items``, unchanged and as lazily, adding each one's ID to the set of its source."""
    for item in items:
        seen.setdefault(item.source, set()).add(item.id)
        yield item


@cli.command()
@click.argument("collection", required=False)
@click.argument("id", required=False)
@click.option("-c", "--content", help="Text to embed")
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(allow_dash=True),
    help="File to embed (- for stdin)",
)
@click.option("--binary", is_flag=True, help="Treat the input as binary data")
@model_option
@click.option("--store", is_flag=True, help="Store the text itself in the database")
@click.option("--metadata", help="JSON object to store as the item's metadata")
@click.option("-f", "--format", "format_", type=click.Choice(OUTPUT_FORMATS), help="Output format")
@distance_option
@key_option
@database_option
def embed(
    collection: str | None,
    id: str | None,
    content: str | None,
    input_path: str | None,
    binary: bool,
    model: str | None,
    store: bool,
    metadata: str | None,
    format_: str | None,
    distance: str | None,
    key: str | None,
    database: str | None,
) -> None:
    """Embed text and print the vector, or store it in a collection under an ID.

    \b
    Examples:
      vibes embed -c 'Hello world'
      vibes embed -i notes.txt -f hex
      vibes embed docs readme -i README.md --store --metadata '{"kind": "doc"}'
    """
    if collection and not id:
        raise click.UsageError("Give both COLLECTION and ID to store an embedding")
    if (store or metadata or distance) and not collection:
        raise click.UsageError("--store, --metadata and --distance need COLLECTION and ID")
    if content is not None and input_path is not None:
        raise click.UsageError("Give -c TEXT or -i FILE, not both")
    parsed_metadata = parse_json_object(metadata, "--metadata")
    value = read_content(content, input_path, binary)
    if collection and id:  # (a COLLECTION without an ID was refused above)
        db = open_database(database, create=True)
        target = db.collection(
            collection, requested_model(db, collection, model), distance=distance
        )
        apply_key(target.model(), key)
        target.embed(id, value, metadata=parsed_metadata, store=store)
        if format_:
            _write_vector(target.vector(id), format_)
        return
    from ..models import get_model
    from ..models.base import warn_truncation

    chosen = get_model(model)
    apply_key(chosen, key)
    vector = chosen.embed(value)
    warn_truncation(chosen)
    _write_vector(vector, format_ or "json")


@cli.command(name="embed-multi")
@click.argument("collection")
@click.argument(
    "input_path",
    metavar="[FILE|URL|-]",
    required=False,
    type=click.Path(allow_dash=True, dir_okay=False),
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["csv", "tsv", "json", "nl"]),
    help="Input format (default: from the extension, else detected)",
)
@click.option(
    "headers",
    "--header",
    multiple=True,
    help="With a URL: an HTTP header for its server, 'Name: value' (a token: "
    "'Authorization: Bearer ...'); repeatable",
)
@click.option(
    "--files",
    type=(click.Path(file_okay=False), str),
    multiple=True,
    help="Embed files: a directory and a glob ('**/*.md' recurses); repeatable",
)
@click.option(
    "--hidden",
    is_flag=True,
    help="With --files: also read hidden files and directories (names starting with '.')",
)
@click.option(
    "--no-ignore",
    "no_ignore",
    is_flag=True,
    help="With --files: also read files that .gitignore files exclude",
)
@click.option(
    "encodings",
    "--encoding",
    multiple=True,
    help="Encodings to try, in order, for --files (default: utf-8, then latin-1)",
)
@click.option("--binary", is_flag=True, help="Embed --files as binary data")
@click.option("--sql", help="Read items with this SQL query against --database")
@click.option(
    "--attach",
    type=(str, click.Path(dir_okay=False)),
    multiple=True,
    help="Attach a database for --sql: ALIAS FILE; repeatable",
)
@click.option("--id-column", help="Column holding the ID (default: 'id', else the first)")
@click.option(
    "content_columns",
    "--content-column",
    multiple=True,
    help="Column to embed; repeatable (default: every other column)",
)
@click.option(
    "metadata_columns",
    "--metadata-column",
    multiple=True,
    help="Column to store as metadata instead of embedding it; repeatable",
)
@click.option(
    "--skip-empty",
    is_flag=True,
    help="Skip rows whose content is empty, and count them (default: stop with an error)",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Items per batch (and transaction)")
@click.option("--prefix", default="", help="Prefix to add to every ID")
@click.option("--prepend", help="Text to put before every content before embedding")
@model_option
@click.option("--store", is_flag=True, help="Store the text itself in the database")
@click.option("--chunk", "chunker", help="Cut each item into chunks with this chunker")
@click.option(
    "chunk_options",
    "--chunk-option",
    multiple=True,
    help="Chunker option as key=value; repeatable",
)
@click.option(
    "--prune",
    is_flag=True,
    help="With --files: delete items that earlier runs read from the same directory "
    "(and --prefix) whose files are gone",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="With --prune: print the IDs it would delete, and change nothing",
)
@click.option(
    "--no-fts",
    is_flag=True,
    help="Create a new collection without a full-text index (words, --mode text)",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print the summary line")
@distance_option
@key_option
@database_option
def embed_multi(
    collection: str,
    input_path: str | None,
    format_: str | None,
    headers: tuple[str, ...],
    files: tuple[tuple[str, str], ...],
    hidden: bool,
    no_ignore: bool,
    encodings: tuple[str, ...],
    binary: bool,
    sql: str | None,
    attach: tuple[tuple[str, str], ...],
    id_column: str | None,
    content_columns: tuple[str, ...],
    metadata_columns: tuple[str, ...],
    skip_empty: bool,
    batch_size: int | None,
    prefix: str,
    prepend: str | None,
    model: str | None,
    store: bool,
    chunker: str | None,
    chunk_options: tuple[str, ...],
    prune: bool,
    dry_run: bool,
    no_fts: bool,
    quiet: bool,
    distance: str | None,
    key: str | None,
    database: str | None,
) -> None:
    """Embed many items at once into COLLECTION.

    \b
    Items come from one of:
      a CSV, TSV, JSON (array of objects) or newline-delimited JSON file, or - for stdin:
        the 'id' column (else the first) is the ID, the other columns are the content;
        a 'metadata' column holding a JSON object becomes the item's metadata
      an http(s) URL of JSON, JSON lines or CSV, pages followed (a Datasette table's
        .json, ?_shape=objects or ?_shape=array): columns as for a file
      --files DIR GLOB: one item per file, ID = path relative to DIR; hidden files and
        what .gitignore excludes are left out (--hidden, --no-ignore)
      --sql QUERY: the first column (or 'id') is the ID, the others the content

    \b
    Unchanged items are not embedded again. Examples:
      vibes embed-multi docs data.csv --store
      cat items.jsonl | vibes embed-multi docs - --metadata-column url
      vibes embed-multi docs --files docs '**/*.md' --store
      vibes embed-multi posts --sql 'select id, title, body from posts' -d blog.db
      vibes embed-multi posts 'https://example.com/blog/posts.json?_shape=objects'
      vibes embed-multi posts "$URL" --header "Authorization: Bearer $DATASETTE_TOKEN"
      vibes embed-multi docs --files . '**/*.md' --chunk markdown --store --prune
      vibes embed-multi docs --files . '**/*.md' --prune --dry-run
      vibes embed-multi docs --files . '**/*.txt' --chunk tokens --chunk-option size=200
    """
    from ..ingest import (
        ColumnSpec,
        UrlRows,
        check_pattern,
        count_files,
        files_source,
        is_url,
        parse_header,
        read_files,
        read_rows,
        read_sql,
        read_url,
        rows_to_items,
    )
    from ..ingest.files import EMPTY, UNREADABLE_DIRECTORY
    from ..ingest.rows import open_input

    sources = sum(bool(x) for x in (input_path, sql, files))
    if sources != 1:
        raise click.UsageError("Give exactly one of: an input file (or -), --sql, or --files")
    if binary and not files:
        raise click.UsageError("--binary works with --files only")
    if headers and not (input_path is not None and is_url(input_path)):
        raise click.UsageError("--header works with a URL input only")
    try:
        sent = dict(parse_header(header) for header in headers)
    except InputError as error:
        raise click.UsageError(str(error)) from None
    if binary and encodings:
        raise click.UsageError("--binary cannot be used with --encoding")
    if format_ and not input_path:
        raise click.UsageError("--format applies to an input file only")
    if attach and not sql:
        raise click.UsageError("--attach applies to --sql only")
    if files and (id_column or content_columns or metadata_columns):
        raise click.UsageError("Column options apply to an input file or --sql, not --files")
    if prune and not files:
        raise click.UsageError("--prune applies to --files only")
    if (hidden or no_ignore) and not files:
        raise click.UsageError("--hidden and --no-ignore apply to --files only")
    if skip_empty and files:
        raise click.UsageError(
            "--skip-empty applies to rows (a file, a URL, --sql); empty files are always skipped"
        )
    if dry_run and not prune:
        raise click.UsageError("--dry-run applies to --prune only")
    if chunk_options and not chunker:
        raise click.UsageError("--chunk-option needs --chunk")
    if chunker and binary:
        raise click.UsageError("--chunk cuts text; it cannot be used with --binary")
    from .chunk import parse_options

    parsed_chunk_options = parse_options(chunk_options, "--chunk-option")
    if chunker:
        from ..chunking import get_chunker

        get_chunker(chunker).settings(parsed_chunk_options)  # fail before reading anything

    for directory, pattern in files:
        check_pattern(directory, pattern)

    show_progress = stderr_is_terminal() and not quiet and not dry_run
    skipped_files: dict[str, _Tally] = {}  # by why: EMPTY, UNREADABLE_DIRECTORY
    empty_rows = _Tally()  # rows skipped by --skip-empty
    db = open_database(database, create=not dry_run)
    total: int | None = None
    url_rows: UrlRows | None = None
    if files:
        items: Any = read_files(
            files,
            encodings=encodings,
            binary=binary,
            prefix=prefix,
            prepend=prepend,
            hidden=hidden,
            gitignore=not no_ignore,
            on_skip=lambda path, why: skipped_files.setdefault(why, _Tally()).add(path),
        )
        if show_progress:
            total = count_files(files, hidden=hidden, gitignore=not no_ignore)
    else:
        spec = ColumnSpec(id_column, content_columns, metadata_columns)
        rows: Iterable[tuple[str, dict[str, Any]]]
        if sql:
            rows, total = read_sql(db.store, sql, attach)
        elif input_path is not None and is_url(input_path):
            encoding = encodings[0] if encodings else None
            rows = url_rows = read_url(input_path, format_, encoding, headers=sent)
        else:
            assert input_path is not None  # the one source given
            stream, name = open_input(input_path)
            if input_path != "-":
                click.get_current_context().call_on_close(stream.close)
            encoding = encodings[0] if encodings else "utf-8-sig"
            rows = read_rows(stream, name, format_, encoding)
            if show_progress and input_path != "-":
                with open(input_path, "rb") as counting:
                    total = sum(1 for _ in read_rows(counting, name, format_, encoding))
        items = rows_to_items(
            rows,
            spec,
            prefix=prefix,
            prepend=prepend,
            on_empty=(lambda location, _id: empty_rows.add(location)) if skip_empty else None,
        )

    seen_ids: dict[str | None, set[str]] = {}
    file_sources = [files_source(directory, pattern, prefix) for directory, pattern in files]
    if prune:
        items = _recording_ids(items, seen_ids)

    def prune_refused() -> bool:
        # A directory that could not be listed hides files that may well still exist:
        # pruning their items would delete what the user still has.
        unreadable = skipped_files.get(UNREADABLE_DIRECTORY)
        if unreadable is None:
            return False
        click.echo(
            f"Warning: not pruning: {unreadable.describe('directory', 'that could not be read')}",
            err=True,
        )
        return True

    if dry_run:
        for _ in items:
            pass  # read every input, to know which ids are still there
        stale = [] if prune_refused() else _stale(db, collection, file_sources, seen_ids, prefix)
        for item_id in stale:
            click.echo(item_id)
        if not quiet:
            click.echo(
                f"Would prune {len(stale)} item{'s' if len(stale) != 1 else ''} of deleted "
                f"files from collection {collection!r} (a dry run: nothing was changed)",
                err=True,
            )
        return

    # Read the first item before creating the collection: bad input creates nothing.
    first = next(items, None)
    if first is None:
        pruned = 0
        if prune and not prune_refused():
            pruned = _prune(db, collection, file_sources, seen_ids, prefix)
        if not quiet:
            click.echo("Nothing to embed: the input holds no items", err=True)
            if empty_rows.count:
                click.echo(f"Skipped {empty_rows.describe('row', 'with empty content')}", err=True)
            if pruned:
                click.echo(f"Pruned {_items(pruned)} of deleted files", err=True)
        return
    if url_rows is not None:
        total = url_rows.total  # known once the first page is read (Datasette counts rows)
    target = db.collection(collection, requested_model(db, collection, model), distance=distance)
    if key is not None:
        apply_key(target.model(), key)
    saved = 0
    bar: ProgressBar[Any] | None = None
    if show_progress:
        # With no total (stdin, a URL that does not say), the bar shows a running count.
        bar = click.progressbar(
            None if total is not None else (_ for _ in ()),
            length=total,
            label="Embedding",
            show_pos=True,
            file=sys.stderr,
        )

    done = 0

    def on_batch(count: int, stats: Any) -> None:
        nonlocal saved, done
        saved = stats.total
        if bar is not None:
            # With chunks, the bar counts documents (files), not chunks.
            now = stats.documents + stats.documents_skipped if chunker else stats.total
            bar.update(now - done)
            done = now

    try:
        stats = target.embed_multi(
            itertools.chain([first], items),
            store=store,
            batch_size=batch_size,
            on_batch=on_batch,
            chunk=chunker,
            chunk_options=parsed_chunk_options,
            fulltext=not no_fts,
        )
        pruned = 0
        if prune and not prune_refused():
            pruned = _prune(db, collection, file_sources, seen_ids, prefix)
    except KeyboardInterrupt:
        raise Interrupted(
            f"Interrupted: {saved} items were saved; run the same command again to resume"
        ) from None
    except VibesError as error:
        kept = f" ({saved} items before it were saved; fix and re-run to resume)" if saved else ""
        raise click.ClickException(f"{error}{kept}") from None
    finally:
        if bar is not None:
            bar.render_finish()
    if not quiet:
        parts = [f"Embedded {stats.embedded}"]
        if stats.reused:
            parts.append(f"reused {stats.reused} identical")
        if stats.updated:
            parts.append(f"updated {stats.updated} (text or metadata)")
        parts.append(f"skipped {stats.skipped} unchanged")
        if stats.duplicates:
            parts.append(f"{stats.duplicates} of them repeated an earlier id (the last kept)")
        if chunker:
            parts.append(
                f"{stats.documents} documents chunked, {stats.documents_skipped} unchanged"
            )
        if stats.stale_chunks:
            parts.append(f"deleted {stats.stale_chunks} stale chunks")
        if stats.empty_documents:
            parts.append(f"{stats.empty_documents} documents gave no chunks")
        if pruned:
            parts.append(f"pruned {_items(pruned)} of deleted files")
        if stats.rejected:
            parts.append(f"skipped {len(stats.rejected)} the model cannot read")
        if EMPTY in skipped_files:
            parts.append(f"skipped {skipped_files[EMPTY].count} empty files")
        if UNREADABLE_DIRECTORY in skipped_files:
            unreadable = skipped_files[UNREADABLE_DIRECTORY]
            parts.append(f"skipped {unreadable.describe('unreadable directory')}")
        if empty_rows.count:
            parts.append(f"skipped {empty_rows.describe('row', 'with empty content')}")
        click.echo(", ".join(parts) + f" in collection {collection!r}", err=True)


class _Tally:
    """How many things were skipped, and the first of them (to name in the summary)."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, what: str) -> None:
        if not self.count:
            self.first = what
        self.count += 1

    def describe(self, noun: str, qualifier: str = "") -> str:
        if self.count != 1:
            noun = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
        words = " ".join(filter(None, [str(self.count), noun, qualifier]))
        return f"{words} (the first: {self.first})"


def _items(count: int) -> str:
    return f"{count} item{'s' if count != 1 else ''}"


def _stale(
    db: Database,
    collection: str,
    sources: list[str],
    seen: dict[str | None, set[str]],
    prefix: str,
) -> list[str]:
    """The ids that pruning would delete: for each ``--files`` source, what it wrote
    earlier that this run did not read again."""
    if not db.has_collection(collection):
        return []
    target = db.collection(collection, create=False)
    return sorted(
        {i for s in sources for i in target.stale(seen.get(s, ()), prefix=prefix, source=s)}
    )


def _prune(
    db: Database,
    collection: str,
    sources: list[str],
    seen: dict[str | None, set[str]],
    prefix: str,
) -> int:
    if not db.has_collection(collection):
        return 0
    target = db.collection(collection, create=False)
    return sum(target.prune(seen.get(s, ()), prefix=prefix, source=s) for s in sources)


@cli.command()
@click.argument("collection")
@click.argument("ids", nargs=-1, required=True)
@database_option
def delete(collection: str, ids: tuple[str, ...], database: str | None) -> None:
    """Delete items from COLLECTION by ID (all or nothing).

    \b
    Example:
      vibes delete docs README.md CHANGES.md
    """
    db = open_database(database)
    deleted = db.collection(collection, create=False).delete_items(ids)
    click.echo(f"Deleted {deleted} item{'s' if deleted != 1 else ''}", err=True)

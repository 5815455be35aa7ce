"""``vibes index``: show, build, rebuild or drop a collection's indexes (approximate
vector index, full-text index)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from . import cli
from .options import database_option, open_database, stderr_is_terminal


@cli.command()
@click.argument("collection")
@click.option(
    "--fts",
    is_flag=True,
    help="Act on the full-text index: build it if missing (with --rebuild/--drop: those)",
)
@click.option("--tokenizer", help="With --fts: the FTS5 tokenizer, e.g. 'unicode61'")
@click.option("--rebuild", is_flag=True, help="Build the index again from every stored item")
@click.option("--drop", is_flag=True, help="Delete the index; searches run without it")
@click.option("--connectivity", type=click.IntRange(4, 256), help="HNSW links per node (M)")
@click.option("--expansion-add", type=click.IntRange(8, 4096), help="HNSW build depth")
@click.option(
    "--expansion-search",
    type=click.IntRange(8, 4096),
    help="HNSW search depth; without --rebuild, changed in place (nothing is rebuilt)",
)
@click.option(
    "--quantize",
    type=click.Choice(["f32", "f16", "i8"]),
    help="Keep the index's vectors (and the exact scan's) as float16 or int8: "
    "half or a quarter of the memory; hits are still scored from float32",
)
@click.option("--wait", is_flag=True, help="Wait for a build running in the background to finish")
@click.option("--background", is_flag=True, hidden=True, help="Run a write's build (internal)")
@database_option
def index(
    collection: str,
    fts: bool,
    tokenizer: str | None,
    rebuild: bool,
    drop: bool,
    connectivity: int | None,
    expansion_add: int | None,
    expansion_search: int | None,
    quantize: str | None,
    wait: bool,
    background: bool,
    database: str | None,
) -> None:
    """Show, rebuild or drop the indexes of COLLECTION.

    Prints the approximate index's kind, size, parameters and staleness as JSON, with
    the full-text index's state under "fulltext".

    Collections get an approximate index automatically once they hold
    $VIBES_INDEX_MIN_ITEMS items (default 20,000): the write that crosses that size
    returns at once and a background process builds the index, searches staying exact
    until it is ready (shown under "building"; --wait waits for it). It is kept in step
    with every write and bypassed when unusable. New collections get a full-text index (for 'vibes
    similar --mode text|hybrid'); --fts builds one for an older collection from its
    stored text.

    \b
    Examples:
      vibes index docs
      vibes index docs --wait
      vibes index docs --rebuild
      vibes index docs --rebuild --connectivity 32 --expansion-search 128
      vibes index docs --expansion-search 48    # search shallower from now on
      vibes index docs --rebuild --quantize i8
      vibes index docs --drop
      vibes index docs --fts
      vibes index docs --fts --rebuild --tokenizer 'unicode61 remove_diacritics 2'
      vibes index docs --fts --drop
    """
    if rebuild and drop:
        raise click.UsageError("Give --rebuild or --drop, not both")
    if tokenizer is not None and not fts:
        raise click.UsageError("--tokenizer applies with --fts")
    tuning: dict[str, int | str] = {
        key: value
        for key, value in (
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
            ("quantize", quantize),
        )
        if value is not None
    }
    # The search depth alone changes in place; the other parameters shape the graph.
    depth_only = set(tuning) == {"expansion_search"} and not rebuild and not drop and not fts
    if tuning and not depth_only and (not rebuild or fts):
        raise click.UsageError(
            "--connectivity, --expansion-add and --quantize apply with --rebuild "
            "(without --fts); --expansion-search alone changes the search depth in place"
        )
    db = open_database(database)
    target = db.collection(collection, create=False)
    if background:
        _build_in_background(db, target)
        return
    if wait:
        _wait_for_build(db, target)
    if rebuild and not fts and stderr_is_terminal():
        db.indexes.progress = _progress_bar(f"Building the search index of {collection!r}")
    if fts:
        if drop:
            target.drop_fulltext()
        elif rebuild or target.fulltext_status()["state"] in ("none", "damaged"):
            target.build_fulltext(tokenizer)
        elif tokenizer is not None:
            raise click.UsageError("The full-text index exists: add --rebuild to change it")
    elif drop:
        target.drop_index()
    elif rebuild:
        target.build_index(**tuning)
    elif depth_only:
        assert expansion_search is not None
        target.set_search_depth(expansion_search)
    status = target.index_status()
    status["fulltext"] = target.fulltext_status()
    click.echo(json.dumps(status))
    if status.get("usable") is False:
        # The JSON says it too, but a person reading the terminal should not miss it.
        click.echo(
            f"Warning: The index of collection {collection!r} {status['problem']}; "
            f"{status['advice']}",
            err=True,
        )


def _build_in_background(db: Any, target: Any) -> None:
    """What a write started: build, repair or fold the index, holding the build lock
    (another build of the collection running: nothing to do)."""
    from ..index import background

    directory = db.indexes.build_directory
    if directory is None:
        return
    with background.holding(directory, target.id, handed=True) as mine:
        if not mine:
            return
        progress = background.Progress(directory, target.id)
        progress(0, target.count(), "starting")
        db.indexes.progress = progress
        db.indexes.notify = lambda message: click.echo(message, err=True)
        db.indexes.maintain(target.record, now=True)
        # Writes made meanwhile (a long embed-multi goes on after it crossed the line):
        # caught up once they pause, in one more pass rather than one per batch.
        for _ in range(MAX_PASSES):
            if not db.indexes.needs_work(target.record):
                break
            progress(0, 0, "waiting for writes to pause")
            _wait_for_quiet(db.store)
            db.indexes.maintain(target.record, now=True)
        progress(1, 1, "done")


#: Passes a background build makes at most to catch up with later writes.
MAX_PASSES = 20
#: Seconds without a change to the vectors that count as writes having paused, and the
#: longest a build waits for that.
QUIET_SECONDS = 2.0
QUIET_WAIT_LIMIT = 120.0


def _wait_for_quiet(store: Any) -> None:
    """Return once the stored vectors have not changed for :data:`QUIET_SECONDS` (or
    after :data:`QUIET_WAIT_LIMIT`)."""
    import time

    deadline = time.monotonic() + QUIET_WAIT_LIMIT
    version, since = store.version(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < QUIET_SECONDS:
        time.sleep(0.25)
        current = store.version()
        if current != version:
            version, since = current, time.monotonic()


def _wait_for_build(db: Any, target: Any) -> None:
    """Wait while a background build of the collection runs, showing its progress."""
    import time

    from ..index import background

    shown = False
    while (found := background.running(db.indexes.build_directory, target.id)) is not None:
        if stderr_is_terminal() and found.get("total"):
            share = min(found.get("done", 0) / found["total"], 1.0)
            click.echo(
                f"\rBuilding the search index of {target.name!r}: {share:.0%}", nl=False, err=True
            )
            shown = True
        time.sleep(0.25)
    if shown:
        click.echo(err=True)


def _progress_bar(label: str) -> Callable[[int, int], bool]:
    """A progress callback that redraws one line on stderr."""
    last = [-1]

    def show(done: int, total: int) -> bool:
        percent = int(100 * done / total) if total else 100
        if percent != last[0]:
            last[0] = percent
            click.echo(f"\r{label}: {percent}%", nl=False, err=True)
            if done >= total:
                click.echo(err=True)
        return True

    return show

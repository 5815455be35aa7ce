"""The ``vibes`` command line: thin click commands over the Python API."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

import click

from ..errors import VibesError


class Interrupted(click.ClickException):
    """Ctrl-C: say what was kept, exit 130 like any shell command stopped by SIGINT."""

    exit_code = 130


class VibesGroup(click.Group):
    """Turns the errors a user can fix into one line on stderr, never a traceback."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
            and not ctx.resilient_parsing
        ):
            from .options import no_such_command

            no_such_command(ctx, name, self.list_commands(ctx))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VibesError as error:  # storage errors included: backends map their own
            raise click.ClickException(one_line(str(error))) from None
        except click.UsageError:
            raise
        except click.ClickException as error:
            # A message that quotes the user's input (a path, a name) holding a newline
            # must still be one line.
            # (click types `message` as final; the exception keeps its class and exit code)
            error.message = one_line(error.message)  # type: ignore[misc]
            raise
        except KeyboardInterrupt:
            raise Interrupted("Interrupted") from None


def one_line(message: str) -> str:
    """``message`` with any line breaks shown as ``\\n``, so that an error stays one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


@click.group(cls=VibesGroup)
@click.version_option(package_name="vibes")
def cli() -> None:
    """Embeddings of your own content, stored in SQLite and searched by meaning.

    \b
    Quick start:
      vibes embed-multi docs --files docs '**/*.md' --store
      vibes similar docs -c 'how do I back up a database?'
    """


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Warnings (an index bypassed, say) are one line on stderr, without source lines.
    click.echo(f"Warning: {message}", err=True)


def main() -> None:
    """Console-script entry point."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        cli.main(prog_name="vibes")
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


# Register the commands (each module adds its own to `cli`).
from . import (  # noqa: E402,F401
    analysis,
    ask,
    chunk,
    cluster,
    collections,
    embed,
    index,
    llms,
    models,
    pg,
    plot,
    related,
    serve,
    similar,
    sql,
)

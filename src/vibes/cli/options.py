"""Options and output helpers shared by the commands."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from .. import jsontext
from ..database import Database

#: Environment variables naming the database when ``-d`` is not given: vibes' own first,
#: then llm's, so that a shell set up for ``llm`` works with ``vibes`` in its place.
DATABASE_VARIABLES = ("VIBES_DB", "LLM_EMBEDDINGS_DB")
#: Likewise for the model (``-m``).
MODEL_VARIABLES = ("VIBES_MODEL", "LLM_EMBEDDING_MODEL")


def database_option(function: Callable) -> Callable:
    """``-d/--database``: a path, else ``$VIBES_DB``, else ``$LLM_EMBEDDINGS_DB``, else the
    default database."""
    return click.option(
        "-d",
        "--database",
        type=click.Path(dir_okay=False, allow_dash=False),
        envvar=list(DATABASE_VARIABLES),
        help="Database file, or a postgresql:// URL (default: $VIBES_DB, else "
        "$LLM_EMBEDDINGS_DB, else the one 'vibes path' prints)",
    )(function)


def default_database() -> Path:
    """The database a command uses without ``-d``: what ``vibes path`` prints."""
    from ..config import default_database_path

    for variable in DATABASE_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return Path(value)
    return default_database_path()


def model_option(function: Callable) -> Callable:
    """``-m/--model``, else ``$VIBES_MODEL``, else ``$LLM_EMBEDDING_MODEL``.

    A model from the environment is a default, not a request: commands that work on an
    existing collection use the collection's own model instead (see
    :func:`from_environment`), as llm does."""
    return click.option(
        "-m",
        "--model",
        envvar=list(MODEL_VARIABLES),
        help="Embedding model id or alias (default: an existing collection's own, else "
        "$VIBES_MODEL, else $LLM_EMBEDDING_MODEL, else 'vibes models default')",
    )(function)


def from_environment(parameter: str) -> bool:
    """Whether the running command's ``parameter`` came from an environment variable."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(parameter) is ParameterSource.ENVIRONMENT


def requested_model(db: Database, collection: str, model: str | None) -> str | None:
    """The model named for ``collection``: a model from the environment ($VIBES_MODEL,
    $LLM_EMBEDDING_MODEL) is a default for new collections, as in llm, not a request
    that an existing collection's own model would refuse."""
    if model is not None and from_environment("model") and db.has_collection(collection):
        return None
    return model


def key_option(function: Callable) -> Callable:
    return click.option(
        "--key", help="API key to use, or the name of one saved with 'vibes keys set'"
    )(function)


def apply_key(model: Any, key: str | None) -> None:
    """Give an API model the key from ``--key`` (a saved key's name, or the key itself)."""
    if key is None:
        return
    if not hasattr(model, "key_override"):
        raise click.UsageError(f"--key applies to API models; {model.model_id} takes none")
    from ..keys import get_key

    model.key_override = get_key(key) or key


def table_option(function: Callable) -> Callable:
    return click.option("--table", is_flag=True, help="Print an aligned table, not JSON lines")(
        function
    )


def open_database(path: str | None, *, create: bool = False) -> Database:
    """The database at ``path`` (else the default one). Only commands that write items
    pass ``create=True``: reading never creates a file or directory."""
    database = Database(path or None, create=create)
    if stderr_is_terminal():
        # Long index builds say what they are doing, on a terminal only.
        database.indexes.notify = lambda message: click.echo(message + " ...", err=True)
    return database


def distance_option(function: Callable) -> Callable:
    return click.option(
        "--distance",
        type=click.Choice(["cosine", "dot", "euclidean"]),
        help="Distance for a new collection (default: cosine)",
    )(function)


def emit_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))


def emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """An aligned plain-text table with a header row."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(r[i]) for r in cells]) for i, column in enumerate(columns)]
    lines = [columns, ["-" * w for w in widths], *cells]
    for line in lines:
        click.echo("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())


def emit_models(rows: Sequence[dict[str, Any]], columns: Sequence[str], table: bool) -> None:
    """Models as JSON lines, or with ``table`` as a table in which ``"*"`` marks the
    default (each row's ``"default"``)."""
    if table:
        for row in rows:
            row["default"] = "*" if row["default"] else ""
        emit_table(rows, columns)
    else:
        emit_json_lines(rows)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def parse_json_object(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = jsontext.loads(value)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error.msg}", param_hint=option) from None
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint=option) from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return parsed


def no_such_command(ctx: click.Context, name: str, commands: Iterable[str]) -> NoReturn:
    """A usage error for a mistyped subcommand, naming the closest one (whatever click's
    version: older ones suggest nothing)."""
    close = difflib.get_close_matches(name, sorted(commands), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise click.UsageError(f"No such command {name!r}.{hint}", ctx)


class DefaultGroup(click.Group):
    """A group that runs its default subcommand when none is named (``vibes collections``,
    ``vibes collections -d x.db``), as llm's groups do."""

    def __init__(self, *args: Any, default_command: str = "list", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first is None or (first not in self.commands and first not in ("--help", "-h")):
            default = self.commands.get(self.default_command)
            takes_arguments = default is not None and any(
                isinstance(param, click.Argument) for param in default.params
            )
            if (
                first is not None
                and not first.startswith("-")
                and not takes_arguments
                and not ctx.resilient_parsing
            ):
                # Not an option of the default command, and it takes no arguments: a
                # mistyped subcommand ("delte"), not something to hand it.
                no_such_command(ctx, first, self.commands)
            args.insert(0, self.default_command)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The group's own options, then those of the default subcommand (which run without
        # naming it: `vibes collections --table`), then the subcommands.
        click.Command.format_options(self, ctx, formatter)
        default = self.commands.get(self.default_command)
        if default is not None:
            records = [
                record
                for param in default.params
                if (record := param.get_help_record(ctx)) is not None
            ]
            if records:
                with formatter.section(
                    f"Options of '{self.default_command}' (run when no command is named)"
                ):
                    formatter.write_dl(records)
        self.format_commands(ctx, formatter)


def read_content(content: str | None, input_path: str | None, binary: bool) -> str | bytes:
    """The text (or bytes) to embed: ``-c``, else ``-i FILE`` (``-`` is stdin), else stdin."""
    if content is not None:
        value: str | bytes = content
    elif input_path is not None and input_path != "-":
        try:
            with open(input_path, "rb") as file:
                data = file.read()
        except OSError as error:
            raise click.ClickException(f"Cannot read {input_path!r}: {error.strerror}") from None
        value = data if binary else _decode(data, input_path)
    else:
        if input_path is None and sys.stdin.isatty():
            raise click.UsageError("No content: give -c TEXT, -i FILE, or pipe it in")
        data = sys.stdin.buffer.read()
        value = data if binary else _decode(data, "stdin")
    if value in ("", b"") or (isinstance(value, str) and not value.strip()):
        raise click.ClickException("No content to embed: the input is empty")
    return value


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(
            f"{name} is not valid UTF-8 text (use --binary for binary content)"
        ) from None


def filter_options(function: Callable) -> Callable:
    """``-f/--filter`` (repeatable), ``--prefix`` and ``--where``: what narrows a search,
    as ``vibes similar`` takes them."""
    for decorator in reversed(
        (
            click.option(
                "filters",
                "-f",
                "--filter",
                multiple=True,
                help="Metadata filter: key=value, key!=value, key<value (<=, >, >=), "
                "key in a,b; repeatable",
            ),
            click.option("--prefix", help="Only IDs starting with this text (taken literally)"),
            click.option(
                "--where",
                help="Only items for which this SQL condition holds: SQLite's on embeddings, "
                "or PostgreSQL's on vibes_embeddings (metadata is jsonb there)",
            ),
        )
    ):
        function = decorator(function)
    return function


def mode_options(default: str, mode_help: str | None = None) -> Callable[[Callable], Callable]:
    """``--mode vector|text|hybrid`` and ``--hybrid``; :func:`search_mode` reads them.
    ``mode_help``: --mode's help, in place of one naming the ``default``."""

    def decorate(function: Callable) -> Callable:
        function = click.option("--hybrid", is_flag=True, help="Short for --mode hybrid")(function)
        return click.option(
            "--mode",
            type=click.Choice(["vector", "text", "hybrid"]),
            help=mode_help
            or f"vector (meaning), text (words, BM25) or hybrid (both, fused); default: {default}",
        )(function)

    return decorate


def search_mode(mode: str | None, hybrid: bool, default: str) -> str:
    """The mode ``--mode``/``--hybrid`` ask for (a usage error when they disagree)."""
    if hybrid and mode not in (None, "hybrid"):
        raise click.UsageError(f"Give --hybrid or --mode {mode}, not both")
    return "hybrid" if hybrid else (mode or default)

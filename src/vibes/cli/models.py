"""``vibes models``, ``vibes path`` and ``vibes plugins``."""

from __future__ import annotations

import click

from ..config import default_database_path
from . import cli
from .options import DefaultGroup, emit_json_lines, emit_table, table_option


@cli.group(cls=DefaultGroup, default_command="list")
def models() -> None:
    """List embedding models and choose the default (default: list)."""


@models.command(name="list")
@table_option
def models_list(table: bool) -> None:
    """List the embedding models, with their dimensions and aliases.

    \b
    Examples:
      vibes models
      vibes models --table
    """
    from ..models import default_model_id, registered_models

    default = default_model_id()
    rows = [
        {
            "id": entry.model.model_id,
            "dimensions": entry.model.dimensions,
            "aliases": list(entry.aliases),
            "default": entry.model.model_id == default,
        }
        for entry in registered_models()
    ]
    if table:
        for row in rows:
            row["default"] = "*" if row["default"] else ""
        emit_table(rows, ["id", "dimensions", "aliases", "default"])
    else:
        emit_json_lines(rows)


@models.command(name="default")
@click.argument("model", required=False)
@click.option("--remove", is_flag=True, help="Go back to the built-in default model")
def models_default(model: str | None, remove: bool) -> None:
    """Show the default model, or set it.

    \b
    Examples:
      vibes models default
      vibes models default minilm
      vibes models default --remove
    """
    from ..models import default_model_id, set_default_model

    if model and remove:
        raise click.UsageError("Give a MODEL or --remove, not both")
    if remove:
        set_default_model(None)
    elif model:
        set_default_model(model)
    else:
        click.echo(default_model_id())


@cli.command()
def path() -> None:
    """Print the path of the default database.

    \b
    Example:
      vibes path
    """
    click.echo(default_database_path())


@cli.command()
def plugins() -> None:
    """List the installed plugins as JSON lines.

    \b
    Example:
      vibes plugins
    """
    from ..plugins import list_plugins

    emit_json_lines(list_plugins())

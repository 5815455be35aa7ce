"""``vibes models``, ``vibes path`` and ``vibes plugins``."""

from __future__ import annotations

import json

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
    from ..errors import UnknownModelError
    from ..models import default_model_id, get_model, registered_models

    default = default_model_id()
    try:
        # The default may be saved as an alias (settings from before model ids): mark the
        # model it names.
        default = get_model(default).model_id
    except UnknownModelError:
        pass
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


@models.command(name="register")
@click.argument("path_or_name", required=False)
@click.option("--alias", required=True, help="Name to use the model by (-m NAME)")
@click.option(
    "--model-id",
    help="Id collections record (default: the Hugging Face name, the API's model name, "
    "or one read from the directory's model card, else local:DIRNAME-HASH)",
)
@click.option("--query-prefix", default="", help="Put before every search query, e.g. 'query: '")
@click.option("--document-prefix", default="", help="Put before every document, e.g. 'passage: '")
@click.option(
    "--normalize/--no-normalize", default=None, help="Scale vectors to unit length (or not)"
)
@click.option("--max-length", type=click.IntRange(min=1), help="Tokens of a text the model reads")
@click.option("--api", "api_url", help="Base URL of an OpenAI-compatible API, e.g. http://host/v1")
@click.option("--api-model", help="The model name the API knows (default: the alias)")
@click.option("--api-key-name", help="Key saved with 'vibes keys set NAME' to send")
@click.option("--api-key-env", help="Environment variable holding the key")
@click.option("--dimensions", type=click.IntRange(min=1), help="Vector length (API models)")
def models_register(
    path_or_name: str | None,
    alias: str,
    model_id: str | None,
    query_prefix: str,
    document_prefix: str,
    normalize: bool | None,
    max_length: int | None,
    api_url: str | None,
    api_model: str | None,
    api_key_name: str | None,
    api_key_env: str | None,
    dimensions: int | None,
) -> None:
    """Make a model usable by name: a sentence-transformers or CLIP directory (or a name in
    the local Hugging Face cache), or a model behind an OpenAI-compatible API. Saved in the
    user settings. Collections record the model's id (--model-id), not its alias, so that
    another machine knows the model.

    \b
    Examples:
      vibes models register ~/models/e5-large-v2 --alias e5 \\
          --query-prefix 'query: ' --document-prefix 'passage: '
      vibes models register ~/models/clip-vit-b-32 --alias clip
      vibes models register --api http://localhost:11434/v1 --api-model nomic-embed-text \\
          --alias nomic
      vibes models register --api https://api.example.com/v1 --api-model embed-v3 \\
          --alias remote --api-key-name example
    """
    from ..models.registrations import register

    if (api_model or api_key_name or api_key_env) and not api_url:
        raise click.UsageError("--api-model and the key options go with --api URL")
    entry = register(
        path_or_name,
        alias=alias,
        model_id=model_id,
        api_url=api_url,
        api_model=api_model,
        api_key_name=api_key_name,
        api_key_env=api_key_env,
        dimensions=dimensions,
        query_prefix=query_prefix,
        document_prefix=document_prefix,
        normalize=normalize,
        max_length=max_length,
    )
    click.echo(json.dumps(entry))


@models.command(name="unregister")
@click.argument("alias")
def models_unregister(alias: str) -> None:
    """Forget a model registered with 'vibes models register'.

    \b
    Example:
      vibes models unregister e5
    """
    from ..models.registrations import unregister

    unregister(alias)


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


@cli.group(cls=DefaultGroup, default_command="list")
def keys() -> None:
    """Manage API keys (default: list their names)."""


@keys.command(name="list")
def keys_list() -> None:
    """List the names of the saved keys (never the keys).

    \b
    Example:
      vibes keys
    """
    from ..keys import key_names

    for name in key_names():
        click.echo(name)


@keys.command(name="set")
@click.argument("name")
@click.option("--value", help="The key (default: prompt for it without echo, or read stdin)")
def keys_set(name: str, value: str | None) -> None:
    """Save an API key under NAME, readable by the user alone.

    \b
    Examples:
      vibes keys set openai
      echo "$KEY" | vibes keys set openai
    """
    import sys

    from ..keys import set_key

    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(f"Key for {name}", hide_input=True)
        else:
            line = sys.stdin.buffer.readline()
            try:
                value = line.decode("utf-8")
            except UnicodeDecodeError:
                raise click.ClickException("The key on stdin is not valid UTF-8 text") from None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise click.ClickException("The key is not valid UTF-8 text") from None
    set_key(name, value)


@keys.command(name="remove")
@click.argument("name")
def keys_remove(name: str) -> None:
    """Delete the saved key NAME.

    \b
    Example:
      vibes keys remove openai
    """
    from ..keys import remove_key

    if not remove_key(name):
        raise click.ClickException(f"No key called {name!r}")


@keys.command(name="path")
def keys_path() -> None:
    """Print the path of the keys file.

    \b
    Example:
      vibes keys path
    """
    from ..keys import keys_path as path_of_keys

    click.echo(path_of_keys())


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

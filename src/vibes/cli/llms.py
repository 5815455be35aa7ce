"""``vibes llms``: list, register and choose chat models (LLMs)."""

from __future__ import annotations

import json
from typing import Any

import click

from . import cli
from .options import DefaultGroup, emit_models, table_option


@cli.group(cls=DefaultGroup, default_command="list")
def llms() -> None:
    """List, register and choose chat models (LLMs) for 'vibes ask' (default: list)."""


@llms.command(name="list")
@table_option
def llms_list(table: bool) -> None:
    """List the chat models: OpenAI's (kind "openai"), those registered with 'vibes llms
    register' ("api"), and llm's and its plugins' as llm:NAME ("llm", when llm is
    installed). context_length is the tokens a model reads, when known.

    \b
    Examples:
      vibes llms
      vibes llms --table
    """
    from ..errors import VibesError
    from ..llms import default_llm, get_llm, registered_llms

    default = default_llm()
    if default:
        try:
            default = get_llm(default).model_id
        except VibesError:
            pass  # a default that names no model any more marks none
    rows: list[dict[str, Any]] = [
        {
            "id": entry.model.model_id,
            "aliases": list(entry.aliases),
            "kind": entry.kind,
            "context_length": entry.model.context_length,
            "default": entry.model.model_id == default,
        }
        for entry in registered_llms()
    ]
    emit_models(rows, ["id", "aliases", "kind", "context_length", "default"], table)


@llms.command(name="register")
@click.option("--api", "api_url", required=True, help="Base URL of the API: http://host:port/v1")
@click.option("--api-model", help="The model name the API knows (default: the alias)")
@click.option("--alias", required=True, help="Name to use the model by")
@click.option("--api-key-name", help="Key saved with 'vibes keys set NAME' to send")
@click.option("--api-key-env", help="Environment variable holding the key")
@click.option(
    "--context-length", type=click.IntRange(min=1), help="Tokens the model reads, when known"
)
def llms_register(
    api_url: str,
    api_model: str | None,
    alias: str,
    api_key_name: str | None,
    api_key_env: str | None,
    context_length: int | None,
) -> None:
    """Make a chat model behind an OpenAI-compatible /v1/chat/completions API usable by
    name: OpenAI, Ollama, llama.cpp's server, vLLM, LM Studio. Saved in the user settings
    (the key is not: it is read from --api-key-env, else the key saved as --api-key-name).
    Prints the registration as saved.

    \b
    Examples:
      vibes llms register --api http://localhost:11434/v1 --api-model llama3.2 \\
          --alias llama --context-length 8192
      vibes llms register --api https://api.example.com/v1 --api-model big-model \\
          --alias big --api-key-name example
    """
    from ..llms import register_llm

    entry = register_llm(
        alias,
        api_url=api_url,
        api_model=api_model,
        api_key_name=api_key_name,
        api_key_env=api_key_env,
        context_length=context_length,
    )
    click.echo(json.dumps(entry))


@llms.command(name="unregister")
@click.argument("alias")
def llms_unregister(alias: str) -> None:
    """Forget a chat model registered with 'vibes llms register' (and unset it as the
    default LLM, if it was).

    \b
    Example:
      vibes llms unregister llama
    """
    from ..llms import unregister_llm

    if unregister_llm(alias):
        click.echo(f"{alias} was the default LLM; no default is set now", err=True)


@llms.command(name="default")
@click.argument("name", required=False)
@click.option("--remove", "--remove-default", is_flag=True, help="Set no default LLM")
def llms_default(name: str | None, remove: bool) -> None:
    """Show the default LLM, or set it ($VIBES_LLM, when set, wins over it).

    \b
    Examples:
      vibes llms default
      vibes llms default gpt-4o-mini
      vibes llms default llm:mistral-7b
      vibes llms default --remove
    """
    from ..errors import UnknownLLMError
    from ..llms import default_llm, set_default_llm

    if name and remove:
        raise click.UsageError("Give a NAME or --remove, not both")
    if remove:
        set_default_llm(None)
    elif name:
        set_default_llm(name)
    else:
        current = default_llm()
        if not current:
            raise UnknownLLMError(
                "No default LLM: set one with 'vibes llms default NAME' ('vibes llms' lists them)"
            )
        click.echo(current)

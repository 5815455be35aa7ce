"""``vibes chunkers`` and ``vibes chunk``: see what a chunker does before embedding."""

from __future__ import annotations

import click

from . import cli
from .options import emit_json_lines, emit_table, model_option, read_content, table_option


def parse_options(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """``key=value`` strings as a dict; the chunker checks names and types."""
    options = {}
    for value in values:
        key, found, setting = value.partition("=")
        if not found or not key.strip():
            raise click.BadParameter(f"expected key=value, not {value!r}", param_hint=flag)
        options[key.strip()] = setting
    return options


@cli.command()
@table_option
def chunkers(table: bool) -> None:
    """List the chunkers with their options.

    \b
    Examples:
      vibes chunkers
      vibes chunkers --table
    """
    from ..chunking import registered_chunkers

    rows = [chunker.describe() for chunker in registered_chunkers().values()]
    if not table:
        emit_json_lines(rows)
        return
    for row in rows:
        row["options"] = [
            f"{name}={spec['default']} ({spec['type']}): {spec['help']}"
            for name, spec in row["options"].items()
        ]
    emit_table(rows, ["name", "description", "options"])


@cli.command()
@click.argument("name")
@click.argument("input_path", metavar="FILE", type=click.Path(allow_dash=True))
@click.option(
    "chunk_options",
    "-o",
    "--option",
    multiple=True,
    help="Chunker option as key=value; repeatable",
)
@model_option
def chunk(name: str, input_path: str, chunk_options: tuple[str, ...], model: str | None) -> None:
    """Print the chunks chunker NAME cuts FILE (- for stdin) into, as JSON lines with their
    offsets, line numbers and context.

    \b
    Examples:
      vibes chunk sentences notes.txt
      vibes chunk markdown README.md -o size=500
      vibes chunk tokens README.md -o size=128 -o overlap=16 -m minilm
      vibes chunk python src/app.py | jq .context
    """
    from ..chunking import get_chunker
    from ..models import get_model

    chunker = get_chunker(name)
    options = parse_options(chunk_options, "--option")
    chunker.settings(options)  # bad options fail before anything is read
    text = read_content(None, input_path, False)
    tokenizer_model = get_model(model) if name == "tokens" else None
    emit_json_lines(
        {"index": c.index, **{k: v for k, v in c.to_dict().items() if k != "index"}}
        for c in chunker.chunk(text, options, tokenizer_model)  # type: ignore[arg-type]
    )

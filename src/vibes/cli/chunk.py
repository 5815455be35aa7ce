"""``vibes chunkers`` and ``vibes chunk``: see what a chunker does before embedding."""

from __future__ import annotations

import sys

import click

from . import cli
from .options import emit_json_lines, emit_table, model_option, table_option


def parse_options(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """``key=value`` strings as a dict; the chunker checks names and types."""
    options = {}
    for value in values:
        key, found, setting = value.partition("=")
        if not found or not key.strip():
            raise click.BadParameter(f"expected key=value, not {value!r}", param_hint=flag)
        options[key.strip()] = setting
    return options


def read_document(input_path: str, encodings: tuple[str, ...]) -> str:
    """The document in ``input_path`` (``-``: stdin), decoded as ``embed-multi --files``
    decodes a file: with the first of ``encodings`` that fits, by default UTF-8, then
    Latin-1. So the chunks shown are those that ``--files ... --chunk`` would store."""
    from ..ingest.files import DEFAULT_ENCODINGS

    name = "stdin" if input_path == "-" else input_path
    try:
        if input_path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(input_path, "rb") as file:
                data = file.read()
    except OSError as error:
        raise click.ClickException(f"Cannot read {name!r}: {error.strerror or error}") from None
    except ValueError as error:  # a path with a NUL character in it
        raise click.ClickException(f"Cannot read {name!r}: {error}") from None
    tried = encodings or DEFAULT_ENCODINGS
    for encoding in tried:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
        except (LookupError, ValueError):  # no such codec, not a text codec, a NUL in it
            raise click.ClickException(f"Unknown encoding: {encoding!r}") from None
    raise click.ClickException(
        f"{name!r} is not valid text in {', '.join(map(repr, tried))}; "
        "give its encoding with --encoding"
    )


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
@click.option(
    "encodings",
    "--encoding",
    multiple=True,
    help="Encodings to try, in order (default: utf-8, then latin-1, as embed-multi --files)",
)
@model_option
def chunk(
    name: str,
    input_path: str,
    chunk_options: tuple[str, ...],
    encodings: tuple[str, ...],
    model: str | None,
) -> None:
    """Print the chunks chunker NAME cuts FILE (- for stdin) into, as JSON lines: each
    chunk's number (from 1: the N of the id DOCUMENT#N it is stored under), text,
    offsets, line numbers and context.

    \b
    Examples:
      vibes chunk sentences notes.txt
      vibes chunk markdown README.md -o size=500
      vibes chunk tokens README.md -o size=128 -o overlap=16 -m minilm
      vibes chunk python src/app.py | jq .context
      vibes chunk lines old.txt --encoding cp1252
    """
    from ..chunking import get_chunker
    from ..models import get_model

    chunker = get_chunker(name)
    options = parse_options(chunk_options, "--option")
    chunker.settings(options)  # bad options fail before anything is read
    text = read_document(input_path, encodings)
    tokenizer_model = get_model(model) if name == "tokens" else None
    emit_json_lines(c.to_dict() for c in chunker.chunk(text, options, tokenizer_model))

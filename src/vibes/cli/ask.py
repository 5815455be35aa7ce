"""``vibes ask``: a question answered by a chat model from a collection's best passages."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from . import cli
from .options import (
    database_option,
    filter_options,
    mode_options,
    open_database,
    search_mode,
)

if TYPE_CHECKING:
    from ..ask import Answer, Source


@cli.command()
@click.argument("collection")
@click.argument("question", required=False)
@click.option(
    "-m",
    "--llm",
    "llm_name",
    metavar="LLM",
    help="Chat model to ask (default: $VIBES_LLM, else 'vibes llms default')",
)
@click.option(
    "-n",
    "--number",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="How many passages to retrieve",
)
@mode_options(default="hybrid")
@filter_options
@click.option(
    "--min-score",
    type=float,
    help="Ask only when the best passage's vector similarity reaches this "
    "(default 0.15 with cosine, none in text mode)",
)
@click.option(
    "--context",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Neighbouring chunks to add around each chunk found, on each side",
)
@click.option("--exact", is_flag=True, help="Exact search: bypass the approximate index")
@click.option("--rerank", metavar="MODEL", help="Re-score the passages with this re-ranker")
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    help="Tokens the passages may take (default: fitted to the model's context)",
)
@click.option("--max-tokens", type=click.IntRange(min=1), help="The longest answer, in tokens")
@click.option("--temperature", type=float, help="The model's temperature")
@click.option("--system", help="Instructions replacing the default ones")
@click.option(
    "--template",
    help="The message to send, a text or a file holding {sources} and {question}",
)
@click.option("as_json", "--json", is_flag=True, help="One JSON object: answer, sources, ...")
@click.option(
    "--sources-only",
    "--no-llm",
    "sources_only",
    is_flag=True,
    help="Print what would be sent, without calling a model",
)
@click.option(
    "-c",
    "--continue",
    "continue_",
    is_flag=True,
    help="A follow-up: send the last conversation about this collection too",
)
@click.option("--no-stream", is_flag=True, help="Print the answer when complete")
@database_option
def ask(
    collection: str,
    question: str | None,
    llm_name: str | None,
    number: int,
    mode: str | None,
    hybrid: bool,
    filters: tuple[str, ...],
    prefix: str | None,
    where: str | None,
    min_score: float | None,
    context: int,
    exact: bool,
    rerank: str | None,
    budget: int | None,
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    template: str | None,
    as_json: bool,
    sources_only: bool,
    continue_: bool,
    no_stream: bool,
    database: str | None,
) -> None:
    """Answer QUESTION from the passages of COLLECTION that match it best.

    Retrieves the best passages (hybrid search; with their neighbouring chunks), fits
    them into the model's context, and prints the answer as it arrives, citing the
    passages as [1], [2]; then lists them ("Sources:") with their ids, documents and
    lines. The question is read from stdin when it is '-' or not given.

    When no passage is close enough to the question (--min-score), says so on stderr
    and asks no model.

    \b
    Examples:
      vibes ask docs 'how do I back up the database?'
      vibes ask docs 'which options does embed take?' -m gpt-4o-mini -n 5
      echo 'what is a chunk?' | vibes ask docs
      vibes ask docs 'and how do I restore it?' --continue
      vibes ask docs 'backups' --sources-only
      vibes ask docs 'backups' --json | jq .sources[].id
      vibes ask docs 'ERR_42 meaning' --mode text --filter lang=en
    """
    from ..ask import ask as ask_question
    from ..ask import history

    mode = search_mode(mode, hybrid, "hybrid")
    text = _question(question)
    db = open_database(database)
    target = db.collection(collection, create=False)
    turns = history.last_turns(db.path, collection) if continue_ else []
    options: dict[str, Any] = {
        "llm": llm_name,
        "n": number,
        "mode": mode,
        "budget": budget,
        "system": system,
        "template": template,
        "min_score": min_score,
        "context": context,
        "history": turns,
        "sources_only": sources_only,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "filters": filters,
        "prefix": prefix,
        "where": where,
        "exact": exact,
        "rerank": rerank,
    }
    if sources_only or as_json or no_stream:
        answer = ask_question(target, text, stream=False, **options)
    else:
        answer = _stream(ask_question(target, text, stream=True, **options))
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
    elif sources_only:
        if answer.messages:
            _print_messages(answer.messages)
    elif answer.answer is not None:
        if no_stream:
            click.echo(answer.answer, nl=False)
        _print_sources(answer.answer, answer.sources)
    if answer.answer is None and answer.sources == [] and answer.reason:
        click.echo(answer.reason, err=True)
    if continue_ and not turns:
        # Said once the question was asked, so that an error stays the only line.
        click.echo(
            f"Warning: no earlier question about {collection} to continue; "
            "this starts a new conversation",
            err=True,
        )
    if answer.answer is not None:
        history.record_turn(db.path, collection, answer.turn(), continued=continue_)


def _question(argument: str | None) -> str:
    """The question: the argument, else stdin (for '-', or none given and stdin piped)."""
    if argument is not None and argument != "-":
        return argument
    if argument is None and sys.stdin.isatty():
        raise click.UsageError("No question: give one, or pipe it in")
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException("The question on stdin is not valid UTF-8 text") from None
    if not text.strip():
        raise click.ClickException("No question to ask: the input is empty")
    return text


def _stream(streaming: Any) -> Answer:
    """Print the answer's pieces as they arrive; a failure part way leaves what was
    printed, ends the line, and is reported as one line."""
    from ..errors import VibesError

    printed = False
    try:
        for piece in streaming:
            click.echo(piece, nl=False)
            sys.stdout.flush()
            printed = True
    except (VibesError, KeyboardInterrupt):
        if printed:
            click.echo("")
        raise
    answer: Answer = streaming.result()
    return answer


def _print_sources(answer: str, sources: list[Source]) -> None:
    if answer and not answer.endswith("\n"):
        click.echo("")
    click.echo("")
    click.echo("Sources:")
    for source in sources:
        click.echo(f"[{source.n}] {source.label}")


def _print_messages(messages: list[dict[str, str]]) -> None:
    """What would be sent: each message under its role."""
    for position, message in enumerate(messages):
        if position:
            click.echo("")
        click.echo(f"--- {message['role']} ---")
        click.echo(message["content"])

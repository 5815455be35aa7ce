"""``vibes serve``: the databases' collections in a browser, and a JSON search API."""

from __future__ import annotations

import click

from . import cli
from .options import default_database


@cli.command()
@click.argument("databases", nargs=-1, type=click.Path(dir_okay=False))
@click.option("-h", "--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on (0: any free port)",
)
@click.option(
    "--write",
    is_flag=True,
    help="Let vibes write to the databases (keep indexes up to date, add its tables to a "
    "file llm wrote); read-only without it",
)
@click.option("--cors", is_flag=True, help="Let pages of other origins call the JSON API")
@click.option(
    "--no-ask",
    is_flag=True,
    help="No Ask button or ask.json: visitors cannot spend the default LLM",
)
@click.option(
    "--batch",
    is_flag=True,
    help="Answer concurrent API searches together: more searches a second under load, "
    "scores may differ from 'vibes similar' in the last bits of a float",
)
@click.option("-o", "--open", "open_browser", is_flag=True, help="Open the page in a browser")
def serve(
    databases: tuple[str, ...],
    host: str,
    port: int,
    write: bool,
    cors: bool,
    no_ask: bool,
    batch: bool,
    open_browser: bool,
) -> None:
    """Search the collections of DATABASES (default: the default database) in a browser.

    Datasette with vibes' plugin: a search page per collection at /-/vibes/COLLECTION,
    a similar-items panel on each row of the embeddings table, every table browsable,
    and a JSON API: /-/vibes/COLLECTION/search.json?q=TEXT answers a JSON array of what
    'vibes similar COLLECTION -c TEXT' prints (options as query parameters: n, mode,
    filter, min_score, documents, snippets...). Listens on 127.0.0.1 (this machine
    only) unless --host says otherwise; nothing is written unless --write.

    \b
    Examples:
      vibes serve docs.db
      vibes serve docs.db --port 9000 --open
      curl 'http://127.0.0.1:8001/-/vibes/docs/search.json?q=backups&n=3'
      vibes serve photos.db notes.db --host 0.0.0.0 --no-ask
      vibes serve docs.db --batch --cors
    """
    from ..web.serve import serve as run

    paths = list(databases) or [str(default_database())]

    def ready(url: str) -> None:
        click.echo(f"Serving {', '.join(paths)} at {url} (Ctrl-C to stop)", err=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    run(
        paths,
        host=host,
        port=port,
        write=write,
        cors=cors,
        ask=not no_ask,
        batch=batch,
        on_ready=ready,
    )

"""vibes as a plugin of ``llm`` (entry point group ``llm``): collections in any prompt.

- A fragment loader for the prefix ``vibes``: ``llm -f 'vibes:docs:how do I back up?'
  'how do I back up?'`` puts the passages of the collection ``docs`` that best match the
  question into the prompt, numbered ``[1]``, ``[2]`` as ``vibes ask`` numbers them
  (hybrid search, neighbouring chunks merged, packed into 2,500 tokens at ~4 characters
  a token). ``llm fragments show vibes:docs:QUESTION`` prints them.
- A tool, ``vibes_search(collection, query, n)``, for models that call tools
  (``llm -T vibes_search ...``): the best passages of a collection as JSON.

The database is vibes' default: ``$VIBES_DB``, else ``$LLM_EMBEDDINGS_DB``, else the one
``vibes path`` prints. Importing this module is cheap: vibes loads only when used.
"""

from __future__ import annotations

import json
from typing import Any

import llm

PREFIX = "vibes"


def _database() -> Any:
    from vibes.cli.options import default_database
    from vibes.database import Database

    return Database(default_database(), create=False)


def vibes_fragment(argument: str) -> llm.Fragment:
    """
    The passages of a vibes collection that best match a question, numbered [1], [2]...
    as 'vibes ask' sends them: vibes:COLLECTION:QUESTION
    (the database: $VIBES_DB, else vibes' default)
    """
    from vibes.ask.answer import nothing_relevant
    from vibes.ask.pack import DEFAULT_BUDGET, pack
    from vibes.ask.retrieve import retrieve

    collection_name, separator, question = argument.partition(":")
    if not separator or not collection_name or not question.strip():
        raise ValueError(f"use {PREFIX}:COLLECTION:QUESTION, not {PREFIX}:{argument}")
    database = _database()
    try:
        collection = database.collection(collection_name, create=False)
        found = retrieve(collection, question.strip())
        if not found.passages:
            raise ValueError(
                nothing_relevant(collection_name, found.best, found.min_score, found.found)
            )
        packed = pack(found.passages, DEFAULT_BUDGET)
        return llm.Fragment(packed.text, f"{PREFIX}:{collection_name} ({database.path})")
    finally:
        database.close()


def vibes_search(collection: str, query: str, n: int = 5) -> str:
    """Search a vibes collection (embeddings of the user's own documents) by meaning and
    words for a query. Returns a JSON list of the best passages, best first, each with
    its id, score, document, lines and text."""
    from vibes.ask.pack import approximate_tokens, pack
    from vibes.ask.retrieve import retrieve

    database = _database()
    try:
        found = retrieve(database.collection(collection, create=False), query, n=max(1, n))
        packed = pack(found.passages, 4 * 2500, approximate_tokens) if found.passages else None
        return json.dumps(
            [
                {
                    "id": source.id,
                    "score": round(source.score, 4),
                    "document": source.document,
                    "lines": list(source.lines) if source.lines else None,
                    "text": source.text,
                }
                for source in (packed.sources if packed else [])
            ],
            ensure_ascii=False,
        )
    finally:
        database.close()


@llm.hookimpl
def register_fragment_loaders(register: Any) -> None:
    register(PREFIX, vibes_fragment)


@llm.hookimpl
def register_tools(register: Any) -> None:
    import inspect

    register(
        llm.Tool.function(vibes_search, description=inspect.cleandoc(vibes_search.__doc__ or ""))
    )

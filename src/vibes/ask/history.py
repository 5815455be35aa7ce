"""Conversations for ``vibes ask --continue``: the last one per database and collection.

They are kept in ``conversations.json`` in the user directory (``vibes path``'s directory;
``$VIBES_HOME`` moves it), written atomically and readable by the user alone. Each
conversation keeps its last :data:`MAX_TURNS` questions and answers; the file keeps the
:data:`MAX_CONVERSATIONS` most recently used conversations. A new question without
``--continue`` starts a new conversation in the place of the last one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..config import user_dir, write_private_file
from ..errors import SettingsError

FILENAME = "conversations.json"
MAX_TURNS = 10
MAX_CONVERSATIONS = 100


def history_path() -> Path:
    return user_dir() / FILENAME


def conversation_key(database: str, collection: str) -> str:
    """A database (its absolute path, or its URL) and a collection name, as one key."""
    if "://" not in database:
        database = os.path.abspath(database)
    return f"{database}\n{collection}"


def _load() -> dict[str, Any]:
    path = history_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise SettingsError(f"Cannot read the conversations file {path}: {reason}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(
            f"The conversations file {path} is not valid JSON ({error.msg} at line "
            f"{error.lineno}); fix or remove it"
        ) from None
    conversations = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(conversations, dict):
        raise SettingsError(
            f"The conversations file {path} does not hold conversations; fix or remove it"
        )
    return conversations


def last_turns(database: str, collection: str) -> list[dict[str, Any]]:
    """The turns of the last conversation about ``collection`` of ``database`` ([] when
    there is none): each ``{"question", "answer", "model", "sources": [{"n", "id"}]}``."""
    found = _load().get(conversation_key(database, collection))
    turns = found.get("turns") if isinstance(found, dict) else None
    if not isinstance(turns, list):
        return []
    return [t for t in turns if isinstance(t, dict) and t.get("question") and t.get("answer")]


def record_turn(
    database: str,
    collection: str,
    turn: dict[str, Any],
    *,
    continued: bool,
) -> None:
    """Add ``turn`` to the conversation (``continued``), or start a new one with it."""
    conversations = _load()
    key = conversation_key(database, collection)
    turns = last_turns(database, collection) if continued else []
    turns = [*turns, turn][-MAX_TURNS:]
    conversations.pop(key, None)
    conversations[key] = {
        "database": key.split("\n", 1)[0],
        "collection": collection,
        "updated": int(time.time()),
        "turns": turns,
    }
    # Oldest first in the file; keep the most recent ones.
    kept = dict(list(conversations.items())[-MAX_CONVERSATIONS:])
    _save({"version": 1, "conversations": kept})


def forget(database: str, collection: str) -> bool:
    """Drop the conversation about ``collection``; whether there was one."""
    conversations = _load()
    if conversations.pop(conversation_key(database, collection), None) is None:
        return False
    _save({"version": 1, "conversations": conversations})
    return True


def _save(data: dict[str, Any]) -> None:
    write_private_file(history_path(), json.dumps(data, ensure_ascii=False, indent=1) + "\n")

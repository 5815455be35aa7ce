"""Where vibes keeps its files, and the user's settings."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import SettingsError

DATABASE_FILENAME = "embeddings.db"
SETTINGS_FILENAME = "settings.json"


def user_dir() -> Path:
    """The directory for vibes' own files: ``$VIBES_HOME``, else the platform's user data dir."""
    explicit = os.environ.get("VIBES_HOME")
    if explicit:
        return Path(explicit)
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "vibes"


def default_database_path() -> Path:
    """``$VIBES_DB`` if set, else ``embeddings.db`` in :func:`user_dir`."""
    explicit = os.environ.get("VIBES_DB")
    if explicit:
        return Path(explicit)
    return user_dir() / DATABASE_FILENAME


def settings_path() -> Path:
    """The user's settings file (it may not exist)."""
    return user_dir() / SETTINGS_FILENAME


def load_settings() -> dict[str, Any]:
    """The user's settings, or an empty dict when none were saved.

    A file that is not a JSON object raises :class:`SettingsError` naming the file and,
    for a syntax error, the line and column: a hand-edited file is never taken for empty,
    since the next save would then overwrite every registration in it.
    """
    path = settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as error:
        raise SettingsError(
            f"Settings file {path} is not UTF-8 text (byte {error.start}); fix or remove it"
        ) from None
    except OSError as error:
        raise SettingsError(f"Cannot read the settings file {path}: {error.strerror}") from None
    if not text.strip():
        return {}  # an empty file holds no settings; saving over it loses nothing
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(
            f"Settings file {path} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}; fix or remove it"
        ) from None
    if not isinstance(settings, dict):
        raise SettingsError(
            f"Settings file {path} must hold a JSON object, not {json_type(settings)}; "
            "fix or remove it"
        )
    return settings


def setting_error(key: str, problem: str) -> SettingsError:
    """A one-line error about the entry ``key`` of the settings file."""
    return SettingsError(f"Settings file {settings_path()}: {key} {problem}; fix or remove it")


def json_type(value: Any) -> str:
    """How JSON calls the type of ``value`` (for messages about hand-edited files)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def save_settings(settings: dict[str, Any]) -> None:
    """Write the settings atomically, readable by the user alone.

    Refuses (:class:`SettingsError`) while the file on disk cannot be read: what is in it
    would be lost, and the user may be halfway through editing it.
    """
    load_settings()
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    # A temporary file of its own, created user-only, so that two processes saving at once
    # never write into the same file and no other user can read it even for a moment.
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".settings-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, settings_path())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""Where vibes keeps its files, and the user's settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

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


def load_settings() -> dict[str, Any]:
    """The user's settings, or an empty dict when none were saved."""
    path = user_dir() / SETTINGS_FILENAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A damaged settings file must not stop every command; it is rewritten on the next save.
        return {}


def save_settings(settings: dict[str, Any]) -> None:
    """Write the settings atomically, readable by the user alone."""
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SETTINGS_FILENAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)

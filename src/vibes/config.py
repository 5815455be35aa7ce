"""Where vibes keeps its files, and the user's settings."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
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


def cache_dir() -> Path:
    """The directory for files vibes can make again (converted models): the platform's
    user cache directory, whatever ``$VIBES_HOME`` says, so every user directory on the
    machine shares them."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
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
    write_private_file(settings_path(), json.dumps(settings, indent=2, sort_keys=True) + "\n")


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the user alone (making its
    directory when missing)."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # A temporary file of its own, created user-only, so that two processes saving at once
    # never write into the same file and no other user can read it even for a moment.
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def string_setting(key: str, what: str, remove: str) -> str | None:
    """The string saved under ``key``, or None when there is none (or an empty one).

    Any other value is a :class:`SettingsError` saying it must be ``what`` (a string) and
    naming ``remove``, the command that removes it: falling back to a default instead
    would act on a choice the user did not make.
    """
    value = load_settings().get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SettingsError(
            f'Settings file {settings_path()}: "{key}" must be {what} (a string), not '
            f"{json_type(value)}; fix it or run '{remove}'"
        )
    return value


class Registrations:
    """The list of registrations (objects, each with an ``"alias"``) kept in the settings
    under ``key``: checked when read, saved in place of the one with the same alias,
    removed by alias. ``what`` is what messages call them (``"registrations"``)."""

    def __init__(self, key: str, what: str) -> None:
        self.key = key
        self.what = what

    def saved(self, settings: dict[str, Any]) -> list[Any]:
        """The raw list in ``settings``; refuses (to be changed) a value that is not a list."""
        entries = settings.get(self.key, [])
        if not isinstance(entries, list):
            raise setting_error(
                f'"{self.key}"', f"must be a list of {self.what}, not {json_type(entries)}"
            )
        return entries

    def label(self, index: int, entry: Any) -> str:
        """How messages name the entry at ``index``: ``"models"[2] (alias 'e5')``."""
        alias = entry.get("alias") if isinstance(entry, dict) else None
        suffix = f" (alias {alias!r})" if isinstance(alias, str) and alias else ""
        return f'"{self.key}"[{index}]{suffix}'

    def checked(
        self,
        settings: dict[str, Any],
        problem: Callable[[dict[str, Any]], str | None],
        conflict: Callable[[dict[str, Any], str], str | None],
    ) -> tuple[list[dict[str, Any]], list[tuple[str | None, str]]]:
        """The usable registrations (copies), and for each one skipped its alias (when it
        has one) and a sentence saying why.

        ``problem(entry)`` says what else is wrong with the shape of an entry that is an
        object with an alias (a non-empty string), or None. Each entry of the right shape
        is then given, as a copy with its label and in order, to
        ``conflict``, which says why it cannot be used beside the ones before it, or None
        (it may fill in the copy, and note the names the entry takes).
        """
        try:
            entries = self.saved(settings)
        except SettingsError as error:
            return [], [(None, str(error))]
        usable: list[dict[str, Any]] = []
        skipped: list[tuple[str | None, str]] = []
        for index, entry in enumerate(entries):
            label = self.label(index, entry)
            why = _shape_problem(entry) or problem(entry)
            if why is None:
                entry = dict(entry)
                why = conflict(entry, label)
            if why is not None:
                alias = entry.get("alias") if isinstance(entry, dict) else None
                message = str(setting_error(label, why))
                skipped.append((alias if isinstance(alias, str) else None, message))
                continue
            usable.append(entry)
        return usable, skipped

    def save(self, entry: dict[str, Any]) -> None:
        """Save ``entry`` as the last registration, in place of any with its alias."""
        settings = load_settings()
        kept = [e for e in self.saved(settings) if not _has_alias(e, entry["alias"])]
        settings[self.key] = kept + [entry]
        save_settings(settings)

    def remove(self, settings: dict[str, Any], alias: str) -> bool:
        """Take the registration called ``alias`` (even one of the wrong shape) out of
        ``settings``, without saving them; whether there was one."""
        entries = self.saved(settings)
        kept = [e for e in entries if not _has_alias(e, alias)]
        if len(kept) == len(entries):
            return False
        settings[self.key] = kept
        return True


def _shape_problem(entry: Any) -> str | None:
    """Why a saved registration is not an object with an alias, or None."""
    if not isinstance(entry, dict):
        return f"is {json_type(entry)}, not an object"
    alias = entry.get("alias")
    if not isinstance(alias, str) or not alias.strip():
        return 'has no "alias" (a non-empty string)'
    return None


def _has_alias(entry: Any, alias: str) -> bool:
    return isinstance(entry, dict) and entry.get("alias") == alias

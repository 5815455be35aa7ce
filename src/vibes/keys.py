"""API keys: from an environment variable, else saved by ``vibes keys set`` in a file only
the user can read, else saved by ``llm keys set`` (read, never written: a shell set up
for llm needs no second copy). Keys never go into the database, the output, or an error
message."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .config import user_dir
from .errors import VibesError

KEYS_FILENAME = "keys.json"


def keys_path() -> Path:
    return user_dir() / KEYS_FILENAME


def _load() -> dict[str, str]:
    try:
        data = json.loads(keys_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as error:
        raise VibesError(
            f"Keys file {keys_path()} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}; fix or remove it"
        ) from None
    except (OSError, ValueError) as error:
        raise VibesError(f"Cannot read the keys file {keys_path()}: {error}") from None
    if not isinstance(data, dict):
        # Taken for empty, the file would be overwritten by the next 'vibes keys set'.
        raise VibesError(
            f"Keys file {keys_path()} must hold a JSON object of names and keys; fix or remove it"
        )
    return {str(k): str(v) for k, v in data.items()}


def _save(keys: dict[str, str]) -> None:
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # Created with user-only permissions from the start: no moment where others can read it.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(keys, file, indent=2, sort_keys=True)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def set_key(name: str, value: str) -> None:
    """Save the key ``name``."""
    value = value.strip()
    if not name or not value:
        raise VibesError("A key needs a name and a value")
    keys = _load()
    keys[name] = value
    _save(keys)


def remove_key(name: str) -> bool:
    keys = _load()
    if name not in keys:
        return False
    del keys[name]
    _save(keys)
    return True


def key_names() -> list[str]:
    return sorted(_load())


def llm_keys_path() -> Path:
    """Where ``llm keys set`` saves keys: ``$LLM_USER_PATH/keys.json``, else llm's
    directory in the user's configuration."""
    import click

    explicit = os.environ.get("LLM_USER_PATH")
    base = Path(explicit) if explicit else Path(click.get_app_dir("io.datasette.llm"))
    return base / KEYS_FILENAME


def _llm_keys() -> dict[str, str]:
    """The keys llm saved; none when its file is missing or unreadable (it is llm's file:
    its problems are llm's to report)."""
    try:
        data = json.loads(llm_keys_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # llm's file starts with a "// Note" entry that is not a key.
    return {k: v for k, v in data.items() if isinstance(v, str) and not k.startswith("//")}


def get_key(name: str | None, env_var: str | None = None) -> str | None:
    """The key from ``$env_var`` when set, else the key ``name`` saved by ``vibes keys
    set``, else the one saved by ``llm keys set``."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    if not name:
        return None
    saved = _load().get(name)
    return saved if saved is not None else _llm_keys().get(name) or None


def require_key(
    who: str,
    name: str | None,
    env_var: str | None,
    *,
    override: str | None = None,
    needed: bool = True,
) -> str | None:
    """The key an API model sends: ``override`` (``--key``), else :func:`get_key`. When
    none is found and one is ``needed``, an error saying how to give one, starting with
    ``who`` (``"Model text-embedding-3-small"``)."""
    key = override or get_key(name, env_var)
    if key is None and needed:
        ways = [f"set ${env_var}"] if env_var else []
        if name:
            ways.append(f"run 'vibes keys set {name}'")
        raise VibesError(f"{who} needs an API key: {' or '.join(ways)}")
    return key

"""Chat models the user registered with ``vibes llms register``, and the default LLM, kept in
the user settings (``"llms"``: a list of registrations; ``"default_llm"``: a name).

A registration is a model behind an OpenAI-compatible chat completions API::

    {"alias": "local", "url": "http://localhost:11434/v1", "api_model": "llama3.2",
     "key_name": "ollama", "key_env": "OLLAMA_KEY", "context_length": 8192}

Only ``alias`` and ``url`` are required (``api_model`` defaults to the alias). A saved
registration of the wrong shape is skipped with a warning; asking for it by name is an
error that says what is wrong with it.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..config import (
    Registrations,
    json_type,
    load_settings,
    save_settings,
    string_setting,
)
from ..errors import VibesError
from ..models.registrations import api_url_problem, url_problem
from .openai import OPENAI_CHAT_MODELS, OpenAIChatModel

SETTINGS_KEY = "llms"
DEFAULT_KEY = "default_llm"
_SAVED = Registrations(SETTINGS_KEY, "LLM registrations")
#: The keys a registration may hold.
FIELDS = frozenset({"alias", "url", "api_model", "key_name", "key_env", "context_length"})
#: Prefix of llm's models: never a registration's alias.
LLM_PREFIX = "llm:"


def _problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the shape of one saved registration (an object with an alias),
    or None."""
    alias = entry["alias"]
    if alias.startswith(LLM_PREFIX):
        return f'has the "alias" {alias!r}, but names starting with {LLM_PREFIX!r} are llm\'s'
    for key in entry:
        if key not in FIELDS:
            return f'has "{key}", which an LLM registration does not take'
    problem = url_problem(entry)
    if problem:
        return problem
    for key in ("api_model", "key_name", "key_env"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            return f'has "{key}" {json_type(value)}; it must be a non-empty string'
    length = entry.get("context_length")
    if length is not None and (type(length) is not int or length < 1):
        return f'has "context_length" {length!r}; it must be a whole number above 0'
    return None


def _checked() -> tuple[list[dict[str, Any]], list[tuple[str | None, str]]]:
    """The usable registrations, and for each one skipped its alias and why."""
    taken: dict[str, str] = {}
    builtin = _builtin_names()

    def conflict(entry: dict[str, Any], label: str) -> str | None:
        alias = entry["alias"]
        if alias in builtin:
            return f"has the alias {alias!r}, a name of the built-in LLM {builtin[alias]}"
        if alias in taken:
            return f"has the alias {alias!r} of {taken[alias]}: one name, two models"
        taken[alias] = label
        return None

    # A settings file that is not JSON raises SettingsError, as for embedding models.
    return _SAVED.checked(load_settings(), _problem, conflict)


def llm_registrations() -> list[dict[str, Any]]:
    """The saved registrations that can be used, in the order they were made; each one of
    the wrong shape is skipped with a :class:`~vibes.models.registrations.SettingsWarning`.
    A settings file that is not JSON raises :class:`~vibes.config.SettingsError`."""
    usable, skipped = _checked()
    if skipped:
        from ..models.registrations import SettingsWarning

        for _, message in skipped:
            warnings.warn(message + " (skipped)", SettingsWarning, stacklevel=2)
    return usable


def find_registration(name: str) -> dict[str, Any] | None:
    """The usable registration called ``name``, without warning about the others."""
    for entry in _checked()[0]:
        if entry["alias"] == name:
            return entry
    return None


def registration_problem(name: str) -> str | None:
    """Why the registration called ``name`` was skipped (or why none can be read: a
    ``"llms"`` that is not a list), or None when none was."""
    for alias, message in _checked()[1]:
        if alias == name or (alias is None and f'"{SETTINGS_KEY}" must be' in message):
            return message
    return None


def _builtin_names() -> dict[str, str]:
    """Every id and alias of the built-in LLMs, with the id it names."""
    names: dict[str, str] = {}
    for model_id, _, aliases in OPENAI_CHAT_MODELS:
        for name in (model_id, *aliases):
            names[name] = model_id
    return names


def build(entry: dict[str, Any]) -> OpenAIChatModel:
    """The model a usable registration describes."""
    return OpenAIChatModel(
        entry["alias"],
        entry.get("api_model") or entry["alias"],
        url=entry["url"],
        key_name=entry.get("key_name"),
        key_env=entry.get("key_env"),
        needs_key=bool(entry.get("key_name") or entry.get("key_env")),
        context_length=entry.get("context_length"),
    )


def register_llm(
    alias: str,
    *,
    api_url: str,
    api_model: str | None = None,
    api_key_name: str | None = None,
    api_key_env: str | None = None,
    context_length: int | None = None,
) -> dict[str, Any]:
    """Save a chat model behind an OpenAI-compatible API under ``alias`` (replacing a
    registration with the same alias) and return the registration as saved.

    ``api_model`` is the model's name on the server (default: the alias); the key is read
    from ``$api_key_env``, else the key saved as ``api_key_name``; with neither, no key is
    sent. ``context_length``: the tokens the model reads, when known.
    """
    if not alias or not alias.strip() or alias != alias.strip():
        raise VibesError(f"--alias must be a name without surrounding spaces, not {alias!r}")
    if alias.startswith(LLM_PREFIX):
        raise VibesError(f"The alias {alias!r} starts with {LLM_PREFIX!r}, kept for llm's models")
    builtin = _builtin_names()
    if alias in builtin:
        raise VibesError(
            f"The alias {alias!r} is already a name of the built-in LLM {builtin[alias]}; "
            "choose another --alias"
        )
    problem = api_url_problem(api_url)
    if problem:
        raise VibesError(f"--api {problem}")
    for option, value in (
        ("--api-model", api_model),
        ("--api-key-name", api_key_name),
        ("--api-key-env", api_key_env),
    ):
        if value is not None and not value.strip():
            raise VibesError(f"{option} must not be empty")
    if context_length is not None and (type(context_length) is not int or context_length < 1):
        raise VibesError(f"--context-length must be a whole number above 0, not {context_length!r}")
    entry = {
        "alias": alias,
        "url": api_url.rstrip("/"),
        "api_model": api_model or alias,
        "key_name": api_key_name,
        "key_env": api_key_env,
        "context_length": context_length,
    }
    saved = {k: v for k, v in entry.items() if v is not None}
    _SAVED.save(saved)
    return saved


def unregister_llm(alias: str) -> bool:
    """Forget the registration called ``alias`` (even one of the wrong shape); returns
    whether it was the default LLM, which is then unset."""
    settings = load_settings()
    if not _SAVED.remove(settings, alias):
        raise VibesError(f"No registered LLM called {alias!r} (run 'vibes llms')")
    was_default = settings.get(DEFAULT_KEY) == alias
    if was_default:
        del settings[DEFAULT_KEY]
    save_settings(settings)
    return was_default


def saved_default() -> str | None:
    """The default LLM saved with ``vibes llms default``, or None."""
    return string_setting(DEFAULT_KEY, "an LLM's name", "vibes llms default --remove")


def save_default(model_id: str | None) -> None:
    settings = load_settings()
    if model_id is None:
        settings.pop(DEFAULT_KEY, None)
    else:
        settings[DEFAULT_KEY] = model_id
    save_settings(settings)

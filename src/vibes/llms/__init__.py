"""Chat models (LLMs), for answers (``vibes ask``) and any other text vibes writes.

Three sources, looked up in this order by :func:`get_llm`:

- OpenAI's chat models, built in (``gpt-4o-mini``, ``gpt-4.1``... and llm's aliases for
  them, ``4o-mini``); key ``openai`` or ``$OPENAI_API_KEY``; ``$OPENAI_BASE_URL`` moves them.
- models registered with ``vibes llms register``: any server that speaks OpenAI's
  ``/v1/chat/completions`` (Ollama, llama.cpp's server, vLLM, LM Studio), by alias;
- every model of ``llm`` and its plugins, as ``llm:NAME`` (a name that is none of the
  above is tried in llm too).

The default LLM (``name=None``) is ``$VIBES_LLM``, else the one saved with
``vibes llms default``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

from ..errors import SettingsError, UnknownLLMError, VibesError
from .base import CHARS_PER_TOKEN, ChatModel, Message, Usage
from .registrations import (
    llm_registrations,
    register_llm,
    saved_default,
    unregister_llm,
)

#: The environment variable naming the LLM to use, ahead of the saved default.
ENVIRONMENT_VARIABLE = "VIBES_LLM"

__all__ = [
    "CHARS_PER_TOKEN",
    "ENVIRONMENT_VARIABLE",
    "ChatModel",
    "Message",
    "RegisteredLLM",
    "Usage",
    "default_llm",
    "get_llm",
    "llm_registrations",
    "register_llm",
    "registered_llms",
    "set_default_llm",
    "unregister_llm",
]


@dataclass(frozen=True)
class RegisteredLLM:
    """A chat model vibes knows, with its other names and where it comes from: ``kind`` is
    ``"openai"`` (built in), ``"api"`` (registered) or ``"llm"`` (a model of llm)."""

    model: ChatModel
    aliases: tuple[str, ...] = ()
    kind: str = "api"


def _builtin() -> list[RegisteredLLM]:
    from .openai import openai_chat_models

    return [RegisteredLLM(model, aliases, "openai") for model, aliases in openai_chat_models()]


def _registered() -> list[RegisteredLLM]:
    from .registrations import build

    return [RegisteredLLM(build(entry), (), "api") for entry in llm_registrations()]


def registered_llms(*, include_llm: bool = True) -> list[RegisteredLLM]:
    """Every chat model vibes knows: the built-in ones, the registered ones, then (with
    ``include_llm``, when llm is installed) llm's. llm's models failing to load (a broken
    plugin) is a warning, and the others are still listed."""
    found = _builtin() + _registered()
    if include_llm:
        from .llm_models import llm_chat_models

        try:
            found += [RegisteredLLM(m, aliases, "llm") for m, aliases in llm_chat_models()]
        except VibesError as error:
            warnings.warn(str(error), stacklevel=2)
    return found


def default_llm() -> str | None:
    """The name of the LLM used when none is given: ``$VIBES_LLM``, else the one saved with
    ``vibes llms default``; None when neither is set."""
    return os.environ.get(ENVIRONMENT_VARIABLE) or saved_default()


def get_llm(name: str | None = None) -> ChatModel:
    """The chat model called ``name`` (an id, an alias, ``llm:NAME``); the default LLM for
    None (see :func:`default_llm`), or an error saying how to choose one."""
    wanted = name or default_llm()
    if not wanted:
        raise UnknownLLMError(
            "No LLM chosen: name one, or set a default with 'vibes llms default NAME' (or "
            f"${ENVIRONMENT_VARIABLE}); 'vibes llms' lists them"
        )
    for entry in _builtin():
        if entry.model.model_id == wanted:
            return entry.model
    for entry in _builtin():
        if wanted in entry.aliases:
            return entry.model
    from . import registrations

    entry_found = registrations.find_registration(wanted)
    if entry_found is not None:
        return registrations.build(entry_found)
    problem = registrations.registration_problem(wanted)
    if problem:
        raise SettingsError(f"Registered LLM {wanted!r} cannot be used: {problem}")
    from .llm_models import PREFIX, llm_chat_model

    found = _from_llm(llm_chat_model, wanted)
    if found is not None:
        return found
    where = "" if name else f" (the default LLM, from {_default_source()})"
    hint = "is llm installed? " if wanted.startswith(PREFIX) and not _has_llm() else ""
    raise UnknownLLMError(f"Unknown LLM: {wanted}{where} ({hint}run 'vibes llms' to list them)")


def _from_llm(lookup: Any, wanted: str) -> ChatModel | None:
    try:
        found: ChatModel | None = lookup(wanted)
    except VibesError:
        raise
    except Exception as error:  # a broken llm plugin: one line, not a traceback
        first = (str(error).strip().splitlines() or [""])[0][:300]
        raise VibesError(f"llm could not look up {wanted!r}: {first}") from None
    return found


def _has_llm() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm") is not None


def _default_source() -> str:
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return f"${ENVIRONMENT_VARIABLE}"
    return "'vibes llms default'"


def set_default_llm(name: str | None) -> str | None:
    """Make ``name`` the default LLM (it must be one :func:`get_llm` finds; its id is
    saved); None removes the default. Returns the id saved, or None."""
    from .registrations import save_default

    if name is None:
        save_default(None)
        return None
    model_id = get_llm(name).model_id
    save_default(model_id)
    return model_id

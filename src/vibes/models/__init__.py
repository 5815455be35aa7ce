"""The embedding model registry: models come from plugins through ``register_embedding_models``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import load_settings, save_settings
from ..errors import UnknownModelError, VibesError
from ..plugins import PluginRegistry
from .base import EmbeddingModel, Vector

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

__all__ = [
    "DEFAULT_MODEL_ID",
    "EmbeddingModel",
    "RegisteredModel",
    "Vector",
    "default_model_id",
    "get_model",
    "registered_models",
    "set_default_model",
]


@dataclass(frozen=True)
class RegisteredModel:
    """A model as registered by a plugin, with its aliases."""

    model: EmbeddingModel
    aliases: tuple[str, ...] = ()


def _collect_models() -> tuple[list[RegisteredModel], Callable[..., None]]:
    found: list[RegisteredModel] = []

    def register(model: EmbeddingModel, aliases: tuple[str, ...] | list[str] = ()) -> None:
        if not getattr(model, "model_id", None):
            raise VibesError(f"Plugin registered a model without a model_id: {model!r}")
        found.append(RegisteredModel(model, tuple(aliases)))

    return found, register


_registry = PluginRegistry("register_embedding_models", _collect_models)


def registered_models() -> list[RegisteredModel]:
    """Every model the built-in and installed plugins register, in registration order."""
    return _registry.get()


def _reset_registry() -> None:
    """Forget the registered models, so the next lookup asks the plugins again."""
    _registry.reset()


def get_model(name: str | None = None) -> EmbeddingModel:
    """The model registered under ``name`` (an id or an alias); the default model for None."""
    wanted = name or default_model_id()
    for entry in registered_models():
        if entry.model.model_id == wanted:
            return entry.model
    for entry in registered_models():
        if wanted in entry.aliases:
            return entry.model
    # llm and its plugins: "llm:NAME", or a bare id of an llm model (a collection llm wrote).
    from .llm_models import PREFIX, llm_model

    if wanted.startswith(PREFIX) or not _looks_local(wanted):
        found = llm_model(wanted)
        if found is not None:
            return found
    raise UnknownModelError(f"Unknown embedding model: {wanted} (run 'vibes models' to list them)")


def _looks_local(name: str) -> bool:
    # Names that are paths are never handed to llm.
    return name.startswith((".", "/", "~"))


def default_model_id() -> str:
    """The model used when none is named: the user's choice, else all-MiniLM-L6-v2."""
    return load_settings().get("default_model") or DEFAULT_MODEL_ID


def set_default_model(name: str | None) -> str:
    """Make ``name`` the default model (None restores the built-in default); returns its id."""
    settings = load_settings()
    if name is None:
        settings.pop("default_model", None)
        model_id = DEFAULT_MODEL_ID
    else:
        model_id = get_model(name).model_id
        settings["default_model"] = model_id
    save_settings(settings)
    return model_id

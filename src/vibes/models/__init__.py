"""The embedding model registry: models come from plugins through ``register_embedding_models``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import SettingsError, load_settings, save_settings, string_setting
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
    "same_model",
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
    """The model registered under ``name`` (an id or an alias); the default model for None.

    ``llm:NAME`` and the ids of llm's models (those of collections llm wrote) go through
    llm when it is installed; the model's ``model_id`` is then llm's own id for it, which
    is what a collection records, so that llm (and vibes) can resolve it again.
    """
    wanted = name or default_model_id()
    for entry in registered_models():
        if entry.model.model_id == wanted:
            return entry.model
    for entry in registered_models():
        if wanted in entry.aliases:
            return entry.model
    from .registrations import find_reranker

    if find_reranker(wanted) is not None:
        raise UnknownModelError(
            f"{wanted} is a re-ranker, not an embedding model (it goes with --rerank)"
        )
    from .llm_models import PREFIX, llm_model

    if wanted.startswith(PREFIX) or not _looks_local(wanted):
        found = llm_model(wanted)
        if found is not None:
            return found
    from .registrations import registration_problem

    problem = registration_problem(wanted)
    if problem:
        raise SettingsError(f"Registered model {wanted!r} cannot be used: {problem}")
    raise UnknownModelError(f"Unknown embedding model: {wanted} (run 'vibes models' to list them)")


def same_model(recorded: str, model_id: str) -> bool:
    """Whether a collection that recorded ``recorded`` was made by the model ``model_id``.

    Older collections recorded a registration's alias (``e5``) or ``llm:NAME``, which now
    resolve to a model with another id; the model is the same, so it may write there.
    """
    if recorded == model_id:
        return True
    try:
        return get_model(recorded).model_id == model_id
    except VibesError:
        return False


def _looks_local(name: str) -> bool:
    # Names that are paths are never handed to llm.
    return name.startswith((".", "/", "~"))


def default_model_id() -> str:
    """The model used when none is named: the user's choice, else all-MiniLM-L6-v2."""
    # A value that is no model id is an error: falling back to the built-in default would
    # embed with a model the user did not choose, into collections that then hold it for good.
    value = string_setting("default_model", "a model id", "vibes models default --remove")
    return value or DEFAULT_MODEL_ID


def set_default_model(name: str | None) -> str:
    """Make ``name`` the default model (None restores the built-in default); returns its id."""
    settings = load_settings()
    if name is None:
        settings.pop("default_model", None)
        model_id = DEFAULT_MODEL_ID
    else:
        model = get_model(name)
        model_id = model.model_id
        # A variant that shares another model's id (minilm-int8) is saved by the name
        # given: its id would name the other model.
        settings["default_model"] = model_id if get_model(model_id) is model else name
    save_settings(settings)
    return model_id

"""Models the user registered with ``vibes models register``, kept in the user settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_settings, save_settings
from ..errors import VibesError
from .base import EmbeddingModel

SETTINGS_KEY = "models"


def registrations() -> list[dict[str, Any]]:
    """The saved registrations, in the order they were made."""
    entries = load_settings().get(SETTINGS_KEY, [])
    return [entry for entry in entries if isinstance(entry, dict) and entry.get("alias")]


def _is_clip(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "clip"


def register(
    path_or_name: str | None = None,
    *,
    alias: str,
    api_url: str | None = None,
    api_model: str | None = None,
    api_key_name: str | None = None,
    api_key_env: str | None = None,
    dimensions: int | None = None,
    query_prefix: str = "",
    document_prefix: str = "",
    normalize: bool | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Save a registration (replacing one with the same alias) and return it.

    A local directory (a sentence-transformers model, or a CLIP model saved with its
    processor) or a model name in the local Hugging Face cache; or, with ``api_url``, a
    model behind an OpenAI-compatible ``/v1/embeddings`` API.
    """
    if not alias:
        raise VibesError("A registered model needs an --alias")
    entry: dict[str, Any] = {"alias": alias}
    if api_url:
        if path_or_name:
            raise VibesError("Give a model directory or --api URL, not both")
        entry.update(
            kind="api",
            url=api_url,
            api_model=api_model or alias,
            key_name=api_key_name,
            key_env=api_key_env,
            dimensions=dimensions,
        )
    else:
        if not path_or_name:
            raise VibesError("Give a model directory (or name), or --api URL")
        path = Path(path_or_name).expanduser()
        if path.exists():
            if not path.is_dir():
                raise VibesError(f"Not a model directory: {path_or_name}")
            location = str(path.resolve())
            kind = "clip" if _is_clip(path) else "sentence-transformers"
        else:
            location, kind = path_or_name, "sentence-transformers"  # a name in the HF cache
        entry.update(kind=kind, path=location)
    entry.update(
        query_prefix=query_prefix,
        document_prefix=document_prefix,
        normalize=normalize,
        max_length=max_length,
    )
    settings = load_settings()
    entries = [e for e in settings.get(SETTINGS_KEY, []) if e.get("alias") != alias]
    settings[SETTINGS_KEY] = entries + [{k: v for k, v in entry.items() if v not in (None, "")}]
    save_settings(settings)
    return entry


def unregister(alias: str) -> None:
    """Forget the registration called ``alias``."""
    settings = load_settings()
    entries = settings.get(SETTINGS_KEY, [])
    kept = [e for e in entries if e.get("alias") != alias]
    if len(kept) == len(entries):
        raise VibesError(f"No registered model called {alias!r} (run 'vibes models')")
    settings[SETTINGS_KEY] = kept
    save_settings(settings)


def build(entry: dict[str, Any]) -> EmbeddingModel:
    """The model a registration describes (nothing is loaded until it embeds)."""
    kind = entry.get("kind")
    alias = entry["alias"]
    if kind == "api":
        from .openai import OpenAICompatibleModel

        return OpenAICompatibleModel(
            alias,
            entry.get("api_model", alias),
            url=entry["url"],
            dimensions=entry.get("dimensions"),
            key_name=entry.get("key_name"),
            key_env=entry.get("key_env"),
            needs_key=bool(entry.get("key_name") or entry.get("key_env")),
            query_prefix=entry.get("query_prefix", ""),
            document_prefix=entry.get("document_prefix", ""),
        )
    if kind == "clip":
        from .clip import CLIPModel

        return CLIPModel(alias, entry["path"])
    from .sentence_transformers import SentenceTransformerModel

    return SentenceTransformerModel(
        alias,
        entry["path"],
        query_prefix=entry.get("query_prefix", ""),
        document_prefix=entry.get("document_prefix", ""),
        normalize=entry.get("normalize"),
        max_length=entry.get("max_length"),
    )

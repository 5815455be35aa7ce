"""Models the user registered with ``vibes models register``, kept in the user settings.

Each registration has an alias (the name the user types, meaningful on this machine only)
and a model id, which is what a collection records: a Hugging Face name, the API's model
name, or for a local directory a hub name found in its files, else a ``local:`` id made
from the directory's name and a fingerprint of its files. Collections made before model
ids existed recorded the alias; lookups by alias keep them working.

Re-rankers register here too (kinds ``cross-encoder``, a local sentence-transformers
``CrossEncoder`` directory, and ``rerank``, a server speaking ``/v1/rerank``): they share
the names of embedding models, so that one name never means two models, but they are
never embedding models (:func:`vibes.search.rerank.get_reranker` builds them).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Registrations, json_type, load_settings, save_settings
from ..errors import VibesError
from .base import EmbeddingModel

SETTINGS_KEY = "models"
_SAVED = Registrations(SETTINGS_KEY, "registrations")
#: The kinds of embedding models a registration can be.
EMBEDDING_KINDS = ("sentence-transformers", "clip", "api")
#: The kinds of re-rankers: a local cross-encoder directory, or a ``/v1/rerank`` server.
RERANKER_KINDS = ("cross-encoder", "rerank")
KINDS = EMBEDDING_KINDS + RERANKER_KINDS
#: What ``--quantize`` takes: the variants of a sentence-transformers model's conversion.
QUANTIZATIONS = ("int8",)
#: What ``--runtime`` takes (see :mod:`vibes.models.onnx`).
RUNTIME_CHOICES = ("auto", "onnx", "torch")
#: The kinds served over HTTP, registered with ``--api URL``.
API_KINDS = ("api", "rerank")
#: The only keys a re-ranker's registration may hold, by kind.
_RERANKER_KEYS = {
    "cross-encoder": frozenset({"alias", "kind", "model_id", "path", "max_length"}),
    "rerank": frozenset({"alias", "kind", "model_id", "url", "api_model", "key_name", "key_env"}),
}
#: Prefix of the ids of llm's models (``llm:ada-002``): never a registration's name.
LLM_PREFIX = "llm:"
#: Prefix of the ids made for local directories that name no hub model.
LOCAL_PREFIX = "local:"

#: The models :func:`build` made, so that a registration is never taken for a model of
#: a plugin (or a built-in) when checking what a new registration would shadow.
_built: weakref.WeakSet[EmbeddingModel] = weakref.WeakSet()


class SettingsWarning(UserWarning):
    """A registration in the settings file has the wrong shape and was skipped."""


# -- reading ----------------------------------------------------------------------------


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an API's base URL, or None: it must be http(s) with a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is no number, or a broken IPv6 host, raises)
    except ValueError:
        return f"must be an http(s) URL like http://localhost:11434/v1, not {url!r}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"must be an http(s) URL like http://localhost:11434/v1, not {url!r}"
    return None


def url_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the ``"url"`` of a saved API registration, or None."""
    url = entry.get("url")
    if not isinstance(url, str):
        return 'has no "url" (the API\'s base URL, a string)'
    problem = api_url_problem(url)
    return f'"url" {problem}' if problem else None


def _problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the shape of one saved registration (an object with an alias),
    or None."""
    kind = entry.get("kind", "sentence-transformers")
    if kind not in KINDS:
        return f'has "kind" {kind!r}; it must be one of {", ".join(KINDS)}'
    if kind in RERANKER_KINDS:
        for key in entry:
            if key not in _RERANKER_KEYS[kind]:
                return f'has "{key}", which a re-ranker ({kind}) does not take'
    strings = ["model_id", "query_prefix", "document_prefix"]
    if kind in API_KINDS:
        problem = url_problem(entry)
        if problem:
            return problem
        strings += ["api_model", "key_name", "key_env"]
    else:
        path = entry.get("path")
        if not isinstance(path, str) or not path:
            return 'has no "path" (a model directory or a Hugging Face name, a string)'
    for key in strings:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            return f'has "{key}" {json_type(value)}; it must be a string'
    if entry.get("model_id") == "":
        return 'has an empty "model_id"'
    for key in ("dimensions", "max_length"):
        value = entry.get(key)
        if value is not None and (type(value) is not int or value < 1):
            return f'has "{key}" {value!r}; it must be a whole number above 0'
    normalize = entry.get("normalize")
    if normalize is not None and not isinstance(normalize, bool):
        return f'has "normalize" {json_type(normalize)}; it must be true or false'
    for key, choices in (("runtime", RUNTIME_CHOICES), ("quantize", QUANTIZATIONS)):
        value = entry.get(key)
        if value is not None and value not in choices:
            return f'has "{key}" {value!r}; it must be one of {", ".join(choices)}'
        if value is not None and kind != "sentence-transformers":
            return f'has "{key}", which only a sentence-transformers model takes'
    if entry.get("quantize") and entry.get("runtime") == "torch":
        return 'has "quantize" with "runtime" "torch": quantised models run on ONNX Runtime'
    return None


def _checked() -> tuple[list[dict[str, Any]], list[tuple[str | None, str]]]:
    """The usable registrations, each with its ``model_id``, and for each one skipped its
    alias (when it has one) and a sentence saying why."""
    taken: dict[str, str] = {}  # model id -> the label of the registration that has it

    def conflict(entry: dict[str, Any], label: str) -> str | None:
        stored = entry.get("model_id")
        model_id = stored or _derived_id(entry)
        if model_id in taken:
            if stored:
                why = (
                    "could not be told apart"
                    if is_reranker(entry)
                    else "would mix their vectors in a collection"
                )
                return (
                    f'has the "model_id" {model_id!r} of {taken[model_id]}: two models '
                    f"under one id {why}"
                )
            # Saved before model ids existed: keep the alias as its id, as then.
            model_id = entry["alias"]
        entry["model_id"] = model_id
        taken[model_id] = label
        return None

    return _SAVED.checked(load_settings(), _problem, conflict)


def registrations() -> list[dict[str, Any]]:
    """The saved registrations that can be used, in the order they were made, each with its
    ``model_id``. One of the wrong shape is skipped with a :class:`SettingsWarning` (the
    other models keep working; asking for that one by alias is an error that says why).
    A settings file that is not JSON raises :class:`~vibes.config.SettingsError`."""
    usable, skipped = _checked()
    for _, message in skipped:
        warnings.warn(message + " (skipped)", SettingsWarning, stacklevel=2)
    return usable


def is_reranker(entry: dict[str, Any]) -> bool:
    """Whether a checked registration is a re-ranker, not an embedding model."""
    return entry.get("kind") in RERANKER_KINDS


def reranker_registrations() -> list[dict[str, Any]]:
    """The usable re-ranker registrations, each with its ``model_id``; those skipped are
    not warned about here (the embedding models' lookup already does)."""
    return [entry for entry in _checked()[0] if is_reranker(entry)]


def find_reranker(name: str) -> dict[str, Any] | None:
    """The re-ranker registered under the alias ``name``, else with the id ``name``."""
    found = reranker_registrations()
    for key in ("alias", "model_id"):
        for entry in found:
            if entry[key] == name:
                return entry
    return None


def registration_problem(name: str) -> str | None:
    """Why the registration called ``name`` was skipped, or None when none was."""
    for alias, message in _checked()[1]:
        if alias == name:
            return message
    return None


# -- model ids --------------------------------------------------------------------------

_HUB_NAME = r"[A-Za-z0-9][\w.-]*/[\w.-]+"
# How a model card shows the model loaded by its hub name.
_CARD_PATTERNS = (
    re.compile(r"SentenceTransformer\(\s*['\"](" + _HUB_NAME + r")['\"]"),
    re.compile(r"from_pretrained\(\s*['\"](" + _HUB_NAME + r")['\"]"),
)
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


def _hub_cache_name(path: Path) -> str | None:
    # The Hugging Face cache keeps a model in .../models--ORG--NAME/snapshots/REVISION.
    parts = path.parts
    for index, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[index + 1] == "snapshots":
            return part[len("models--") :].replace("--", "/")
    return None


def _model_card_name(path: Path) -> str | None:
    """The hub name the model card (README.md) loads the model by, when it names just one.

    Only a card that loads exactly one model is trusted: cards of fine-tuned models often
    load their base model too, and config.json's ``_name_or_path`` names the base model
    (all-MiniLM-L6-v2's names nreimers/MiniLM-L6-H384-uncased), so it is never used.
    """
    try:
        card = (path / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for pattern in _CARD_PATTERNS:
        names = set(pattern.findall(card))
        if len(names) == 1:
            return names.pop()
        if names:
            return None
    return None


def _fingerprint(path: Path) -> str:
    """Eight hex digits that change with the model's files: its configuration files whole,
    and the size and first MiB of each weights file (never the whole of a large file)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    for file in files:
        relative = file.relative_to(path).as_posix()
        if file.name == "README.md" or relative.startswith(("onnx/", "openvino/")):
            continue  # documentation and alternative runtimes: the same model either way
        if file.suffix == ".json" or file.name.endswith(".txt"):
            digest.update(relative.encode() + b"\0" + file.read_bytes())
        elif any(file.match(pattern) for pattern in _WEIGHTS):
            with file.open("rb") as weights:
                head = weights.read(1 << 20)
            digest.update(f"{relative}\0{file.stat().st_size}\0".encode() + head)
    return digest.hexdigest()[:8]


def local_model_id(path: Path) -> tuple[str, str]:
    """The model id for a model directory, and where it came from (for messages)."""
    name = _hub_cache_name(path)
    if name:
        return name, "the Hugging Face cache path"
    name = _model_card_name(path)
    if name:
        return name, f"{path / 'README.md'}"
    try:
        fingerprint = _fingerprint(path)
    except OSError:
        fingerprint = ""
    local = f"{LOCAL_PREFIX}{path.name}" + (f"-{fingerprint}" if fingerprint else "")
    return local, "the directory's name and files"


def _derived_id(entry: dict[str, Any]) -> str:
    """The model id of a registration saved without one (before model ids existed)."""
    if entry.get("kind") in API_KINDS:
        return str(entry.get("api_model") or entry["alias"])
    path = Path(entry["path"])
    if path.is_absolute() and path.is_dir():
        return local_model_id(path)[0]
    if path.is_absolute():
        return entry["alias"]  # the directory is gone: nothing to derive an id from
    return entry["path"]  # a name in the Hugging Face cache


def _names_of_other_models(replacing: str) -> dict[str, str]:
    """Every id and alias a registration must not take, with whose it is: built-in and
    plugin models, llm's models, and the other registrations (not ``replacing``)."""
    from . import registered_models

    names: dict[str, str] = {}
    for registered in registered_models():
        if registered.model in _built:
            continue
        for name in (registered.model.model_id, *registered.aliases):
            names.setdefault(name, f"model {registered.model.model_id}")
    for model_id, aliases in _llm_names():
        for name in (model_id, *aliases):
            names.setdefault(name, f"llm's model {model_id}")
    for entry in registrations():
        if entry["alias"] != replacing:
            for name in (entry["alias"], entry["model_id"]):
                names.setdefault(name, f"the registered model {entry['alias']!r}")
    return names


def _llm_names() -> Iterable[tuple[str, list[str]]]:
    try:
        import llm
    except ImportError:
        return []
    try:
        return [
            (m.model.model_id, list(m.aliases)) for m in llm.get_embedding_models_with_aliases()
        ]
    except Exception:  # a broken llm plugin must not stop registering a model of one's own
        return []


# -- changing ---------------------------------------------------------------------------


def register(
    path_or_name: str | None = None,
    *,
    alias: str,
    kind: str | None = None,
    model_id: str | None = None,
    api_url: str | None = None,
    api_model: str | None = None,
    api_key_name: str | None = None,
    api_key_env: str | None = None,
    dimensions: int | None = None,
    query_prefix: str = "",
    document_prefix: str = "",
    normalize: bool | None = None,
    max_length: int | None = None,
    runtime: str | None = None,
    quantize: str | None = None,
) -> dict[str, Any]:
    """Save a registration (replacing one with the same alias) and return it as saved.

    A local directory (a sentence-transformers model, a CLIP model saved with its
    processor, or a cross-encoder) or a model name in the local Hugging Face cache; or,
    with ``api_url``, a model behind an OpenAI-compatible ``/v1/embeddings`` API (or, with
    ``kind="rerank"``, a re-ranker behind a ``/v1/rerank`` API). ``kind`` is one of
    :data:`KINDS`; by default it is read from the directory's files (or is ``api`` with
    ``api_url``). ``model_id`` is what collections record (default: the Hugging Face
    name, the API's model name, or one derived from the directory's files); it and the
    alias may not be another model's. ``runtime`` (``auto``, ``onnx``, ``torch``) and
    ``quantize`` (``int8``) choose how a sentence-transformers model runs; a quantised one
    is converted and checked before it is saved.
    """
    alias = (alias or "").strip()
    if not alias:
        raise VibesError("A registered model needs an --alias")
    if model_id is not None:
        model_id = model_id.strip()
        if not model_id:
            raise VibesError("--model-id must not be empty")
    _check_kind(kind, api_url)
    if kind in RERANKER_KINDS:
        given = {
            "--query-prefix": query_prefix,
            "--document-prefix": document_prefix,
            "--normalize": normalize,
            "--dimensions": dimensions,
            "--max-length": max_length if kind == "rerank" else None,
        }
        for option, value in given.items():
            if value not in (None, ""):
                raise VibesError(f"{option} does not apply to a re-ranker (--kind {kind})")
    entry: dict[str, Any] = {"alias": alias}
    source = "--model-id"
    if api_url:
        if path_or_name:
            raise VibesError("Give a model directory or --api URL, not both")
        problem = api_url_problem(api_url)
        if problem:
            raise VibesError(f"--api {problem}")
        entry.update(
            kind=kind or "api",
            url=api_url,
            api_model=api_model or alias,
            key_name=api_key_name,
            key_env=api_key_env,
            dimensions=dimensions,
        )
        if model_id is None:
            model_id, source = entry["api_model"], "the API's model name"
    else:
        if not path_or_name:
            raise VibesError("Give a model directory (or name), or --api URL")
        path = Path(path_or_name).expanduser()
        try:
            exists = path.exists()
        except OSError as error:  # a name too long for a path, say
            raise VibesError(
                f"Not a model directory or name: {path_or_name[:60]!r}... ({error.strerror})"
            ) from None
        if not exists and path_or_name.startswith(("/", ".", "~")):
            raise VibesError(f"No model directory at {path_or_name!r}")
        if exists:
            if not path.is_dir():
                raise VibesError(f"Not a model directory: {path_or_name}")
            path = path.resolve()
            if kind is None:
                kind = _local_kind(path)
            elif kind == "cross-encoder":
                problem = cross_encoder_problem(path)
                if problem:
                    raise VibesError(problem)
            entry.update(kind=kind, path=str(path))
            if model_id is None:
                model_id, source = local_model_id(path)
        else:
            # A name in the Hugging Face cache: the name is the model's portable id.
            entry.update(kind=kind or "sentence-transformers", path=path_or_name)
            if model_id is None:
                model_id, source = path_or_name, "the Hugging Face name"
    entry["model_id"] = model_id
    _refuse_shadowing(alias, model_id, source)
    if runtime is not None or quantize is not None:
        if entry["kind"] != "sentence-transformers":
            raise VibesError(
                "--runtime and --quantize apply to sentence-transformers models, "
                f"not --kind {entry['kind']}"
            )
        if quantize and runtime == "torch":
            raise VibesError("--quantize runs the model on ONNX Runtime: not with --runtime torch")
        entry.update(runtime=runtime, quantize=quantize)
    if entry["kind"] in RERANKER_KINDS:
        entry.update(max_length=max_length)
    else:
        entry.update(
            query_prefix=query_prefix,
            document_prefix=document_prefix,
            normalize=normalize,
            max_length=max_length,
        )
    saved = {k: v for k, v in entry.items() if v not in (None, "")}
    if saved.get("quantize"):
        _check_quantized(saved)
    _SAVED.save(saved)
    return saved


def _check_quantized(entry: dict[str, Any]) -> None:
    """Convert a model registered with ``--quantize`` now, so that a variant that cannot
    keep its vectors close to the exact ones is refused here, not found out later."""
    from . import onnx

    model = _build(entry)
    path = Path(entry["path"])
    if not path.is_dir():
        return  # a name in the Hugging Face cache: converted when first used
    try:
        onnx.load_encoder(model.model_id, path, entry["quantize"])
    except onnx.ConversionUnavailable as error:
        raise VibesError(
            f"Cannot register {entry['alias']!r} with --quantize {entry['quantize']}: {error}"
        ) from None


def _check_kind(kind: str | None, api_url: str | None) -> None:
    """Refuse a ``kind`` that is not one, or that does not go with (or without) --api."""
    if kind is None:
        return
    if kind not in KINDS:
        raise VibesError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind in API_KINDS and not api_url:
        raise VibesError(f"--kind {kind} needs --api URL, the API's base URL")
    if kind not in API_KINDS and api_url:
        raise VibesError(
            f"--api URL goes with --kind {' or '.join(API_KINDS)}, not --kind {kind} "
            "(a local directory)"
        )


def _refuse_shadowing(alias: str, model_id: str, source: str) -> None:
    for name, what in (("alias", alias), ("model id", model_id)):
        if what.startswith(LLM_PREFIX):
            raise VibesError(
                f"The {name} {what!r} starts with {LLM_PREFIX!r}, kept for llm's models"
            )
    others = _names_of_other_models(alias)
    if alias in others:
        raise VibesError(
            f"The alias {alias!r} is already a name of {others[alias]}; choose another --alias"
        )
    if model_id in others:
        raise VibesError(
            f"The model id {model_id!r} (from {source}) is already a name of "
            f"{others[model_id]}; give this model its own id with --model-id"
        )


def _config(path: Path) -> dict[str, Any]:
    """The directory's config.json (empty when it has none, or none that can be read)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _is_clip(path: Path) -> bool:
    return _config(path).get("model_type") == "clip"


def _architectures(path: Path) -> list[str]:
    found = _config(path).get("architectures")
    return [a for a in found if isinstance(a, str)] if isinstance(found, list) else []


def _is_cross_encoder(path: Path) -> bool:
    """Whether the directory holds a cross-encoder: a transformers model with a
    sequence-classification head (what sentence-transformers' ``CrossEncoder`` loads)."""
    names = _architectures(path)
    return bool(names) and all(n.endswith("ForSequenceClassification") for n in names)


def cross_encoder_problem(path: Path) -> str | None:
    """Why the directory ``path`` cannot be a cross-encoder, or None when it may be one
    (a config.json naming no architectures is given the benefit of the doubt)."""
    names = _architectures(path)
    if names and not _is_cross_encoder(path):
        return (
            f"{path} is not a cross-encoder: its config.json names {', '.join(names)}, not a "
            "...ForSequenceClassification model"
        )
    return None


def _local_kind(path: Path) -> str:
    """The kind of model a directory holds, read from its config.json."""
    if _is_clip(path):
        return "clip"
    if _is_cross_encoder(path):
        return "cross-encoder"
    return "sentence-transformers"


def unregister(alias: str) -> None:
    """Forget the registration called ``alias`` (even one of the wrong shape)."""
    settings = load_settings()
    if not _SAVED.remove(settings, alias):
        raise VibesError(f"No registered model called {alias!r} (run 'vibes models')")
    save_settings(settings)


def build(entry: dict[str, Any]) -> EmbeddingModel:
    """The model a checked registration describes (nothing is loaded until it embeds)."""
    model = _build(entry)
    _built.add(model)
    return model


def _build(entry: dict[str, Any]) -> EmbeddingModel:
    kind = entry.get("kind")
    model_id = entry.get("model_id") or entry["alias"]
    if kind in RERANKER_KINDS:
        raise VibesError(f"{entry['alias']} is a re-ranker, not an embedding model")
    if kind == "api":
        from .openai import OpenAICompatibleModel

        return OpenAICompatibleModel(
            model_id,
            entry.get("api_model") or entry["alias"],
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

        return CLIPModel(model_id, entry["path"])
    from .sentence_transformers import SentenceTransformerModel

    return SentenceTransformerModel(
        model_id,
        entry["path"],
        query_prefix=entry.get("query_prefix", ""),
        document_prefix=entry.get("document_prefix", ""),
        normalize=entry.get("normalize"),
        max_length=entry.get("max_length"),
        runtime=entry.get("runtime"),
        quantize=entry.get("quantize"),
    )

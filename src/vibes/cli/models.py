"""``vibes models`` (and llm's ``embed-models``), ``vibes keys``, ``vibes path`` and
``vibes plugins``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..models.registrations import KINDS, QUANTIZATIONS, RUNTIME_CHOICES
from . import cli
from .options import DefaultGroup, default_database, emit_json_lines, emit_models, table_option

if TYPE_CHECKING:
    from ..models import EmbeddingModel


@cli.group(cls=DefaultGroup, default_command="list")
def models() -> None:
    """List, register and choose embedding models and re-rankers (default: list)."""


@models.command(name="list")
@table_option
def models_list(table: bool) -> None:
    """List the embedding models, with their dimensions, aliases and what runs them, then
    the registered re-rankers. "kind" is "embedding", or a re-ranker's kind
    ("cross-encoder", "rerank"). "runtime" is "onnxruntime" (the fast path, converted on
    first use), "onnxruntime int8", "torch", "api" or "llm".

    \b
    Examples:
      vibes models
      vibes models --table
    """
    from ..errors import UnknownModelError
    from ..models import default_model_id, get_model, registered_models
    from ..models.registrations import reranker_registrations

    try:
        # The default may be saved as an alias (settings from before model ids, or a
        # variant sharing a model's id, minilm-int8): mark the model object it names.
        default: EmbeddingModel | None = get_model(default_model_id())
    except UnknownModelError:
        default = None
    rows: list[dict[str, Any]] = [
        {
            "id": entry.model.model_id,
            "kind": "embedding",
            "dimensions": known_dimensions(entry.model),
            "aliases": list(entry.aliases),
            "runtime": entry.model.runtime,
            "default": entry.model is default,
        }
        for entry in registered_models()
    ]
    rows += [
        {
            "id": entry["model_id"],
            "kind": entry["kind"],
            "dimensions": None,
            "aliases": [] if entry["alias"] == entry["model_id"] else [entry["alias"]],
            "runtime": "torch" if entry["kind"] == "cross-encoder" else "api",
            "default": False,
        }
        for entry in reranker_registrations()
    ]
    emit_models(rows, ["id", "kind", "dimensions", "aliases", "runtime", "default"], table)


@models.command(name="register")
@click.argument("path_or_name", required=False)
@click.option("--alias", required=True, help="Name to use the model by (-m NAME, --rerank NAME)")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    help="What the model is (default: read from the directory's files; api with --api); "
    "cross-encoder and rerank (with --api) are re-rankers",
)
@click.option(
    "--model-id",
    help="Id collections record (default: the Hugging Face name, the API's model name, "
    "or one read from the directory's model card, else local:DIRNAME-HASH)",
)
@click.option("--query-prefix", default="", help="Put before every search query, e.g. 'query: '")
@click.option("--document-prefix", default="", help="Put before every document, e.g. 'passage: '")
@click.option(
    "--normalize/--no-normalize", default=None, help="Scale vectors to unit length (or not)"
)
@click.option("--max-length", type=click.IntRange(min=1), help="Tokens of a text the model reads")
@click.option(
    "--runtime",
    type=click.Choice(RUNTIME_CHOICES),
    help="What runs a sentence-transformers model: auto (default: ONNX Runtime when it can, "
    "else PyTorch), onnx or torch",
)
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZATIONS),
    help="Run a sentence-transformers model quantised on ONNX Runtime (converted and "
    "checked now: vectors within cosine 0.99 of the exact ones)",
)
@click.option(
    "--api", "api_url", help="Base URL of an OpenAI-compatible (or /v1/rerank) API: http://host/v1"
)
@click.option("--api-model", help="The model name the API knows (default: the alias)")
@click.option("--api-key-name", help="Key saved with 'vibes keys set NAME' to send")
@click.option("--api-key-env", help="Environment variable holding the key")
@click.option("--dimensions", type=click.IntRange(min=1), help="Vector length (API models)")
def models_register(
    path_or_name: str | None,
    alias: str,
    kind: str | None,
    model_id: str | None,
    query_prefix: str,
    document_prefix: str,
    normalize: bool | None,
    max_length: int | None,
    runtime: str | None,
    quantize: str | None,
    api_url: str | None,
    api_model: str | None,
    api_key_name: str | None,
    api_key_env: str | None,
    dimensions: int | None,
) -> None:
    """Make a model usable by name: a sentence-transformers or CLIP directory (or a name in
    the local Hugging Face cache), or a model behind an OpenAI-compatible API; or a
    re-ranker for 'vibes similar --rerank': a cross-encoder directory, or a server
    speaking /v1/rerank (llama.cpp, Jina, Cohere, text-embeddings-inference). Saved in the
    user settings. Collections record the model's id (--model-id), not its alias, so that
    another machine knows the model.

    \b
    Examples:
      vibes models register ~/models/e5-large-v2 --alias e5 \\
          --query-prefix 'query: ' --document-prefix 'passage: '
      vibes models register ~/models/clip-vit-b-32 --alias clip
      vibes models register ~/models/bge-small-en-v1.5 --alias bge-fast --quantize int8
      vibes models register --api http://localhost:11434/v1 --api-model nomic-embed-text \\
          --alias nomic
      vibes models register --api https://api.example.com/v1 --api-model embed-v3 \\
          --alias remote --api-key-name example
      vibes models register ~/models/ms-marco-MiniLM-L6-v2 --alias marco \\
          --kind cross-encoder
      vibes models register --kind rerank --api http://localhost:8080/v1 \\
          --api-model bge-reranker-v2-m3 --alias bge-rerank
    """
    from ..models.registrations import register

    if (api_model or api_key_name or api_key_env) and not api_url:
        raise click.UsageError("--api-model and the key options go with --api URL")
    entry = register(
        path_or_name,
        alias=alias,
        kind=kind,
        model_id=model_id,
        api_url=api_url,
        api_model=api_model,
        api_key_name=api_key_name,
        api_key_env=api_key_env,
        dimensions=dimensions,
        query_prefix=query_prefix,
        document_prefix=document_prefix,
        normalize=normalize,
        max_length=max_length,
        runtime=runtime,
        quantize=quantize,
    )
    click.echo(json.dumps(entry))


@models.command(name="convert")
@click.argument("names", nargs=-1)
def models_convert(names: tuple[str, ...]) -> None:
    """Convert sentence-transformers models for ONNX Runtime now (default: the default
    model), so that the first command that embeds does not wait for it. Prints each
    model's id, what runs it, and where its conversion is kept.

    \b
    Examples:
      vibes models convert
      vibes models convert minilm minilm-int8
    """
    from ..errors import VibesError
    from ..models import get_model
    from ..models.sentence_transformers import SentenceTransformerModel

    for name in names or (None,):
        model = get_model(name)
        if not isinstance(model, SentenceTransformerModel):
            raise VibesError(f"{name or model.model_id} is not a sentence-transformers model")
        directory = getattr(model.load(), "directory", None)  # None on PyTorch
        click.echo(
            json.dumps(
                {
                    "id": model.model_id,
                    "runtime": model.runtime,
                    "directory": str(directory) if directory else None,
                }
            )
        )


@models.command(name="unregister")
@click.argument("alias")
def models_unregister(alias: str) -> None:
    """Forget a model (or re-ranker) registered with 'vibes models register'.

    \b
    Example:
      vibes models unregister e5
    """
    from ..models.registrations import unregister

    unregister(alias)


def known_dimensions(model: EmbeddingModel) -> int | None:
    """The length of the model's vectors when known without loading it: as registered, else
    read from the configuration files of a local sentence-transformers or CLIP directory."""
    if model.dimensions is not None:
        return model.dimensions
    from ..models.clip import CLIPModel
    from ..models.sentence_transformers import SentenceTransformerModel

    try:
        if isinstance(model, SentenceTransformerModel):
            return _sentence_transformer_dimensions(model.path)
        if isinstance(model, CLIPModel):
            projection = _json_file(model.path / "config.json").get("projection_dim")
            return projection if _positive(projection) else None
    except (OSError, ValueError, TypeError, AttributeError):
        pass  # unreadable or unexpected files: the dimensions stay unknown
    return None


def _json_file(path: Path) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


#: The pooling modes of a sentence-transformers Pooling module, as saved by releases before
#: and after 6 (``pooling_mode_mean_tokens: true`` or ``pooling_mode: "mean"``): each one
#: in use adds ``embedding_dimension`` numbers to the vector.
_POOLING_FLAGS = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)
#: Modules that leave the vector's length as it is.
_SAME_LENGTH = ("Normalize", "Dropout", "LayerNorm")


def _sentence_transformer_dimensions(path: Path) -> int | None:
    """Follow the modules of a saved sentence-transformers model: the last Pooling or Dense
    module sets the length; any other module that is not known to keep it makes the
    length unknown. A plain transformers directory gets mean pooling of its hidden size."""
    if not path.is_dir():
        return None  # a name in the Hugging Face cache: not worth a search here
    modules_file = path / "modules.json"
    if not modules_file.exists():
        hidden = _json_file(path / "config.json").get("hidden_size")
        return hidden if _positive(hidden) else None
    length: int | None = None
    for module in _json_file(modules_file):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        directory = path / str(module.get("path", ""))
        if kind == "Transformer" or kind in _SAME_LENGTH:
            continue
        if kind == "Pooling":
            config = _json_file(directory / "config.json")
            size = config.get("embedding_dimension", config.get("word_embedding_dimension"))
            mode = config.get("pooling_mode")
            if mode is None:
                modes = sum(config.get(flag) is True for flag in _POOLING_FLAGS)
            else:
                modes = 1 if isinstance(mode, str) else len(mode)
            length = size * modes if _positive(size) and modes else None
        elif kind == "Dense":
            features = _json_file(directory / "config.json").get("out_features")
            length = features if _positive(features) else None
        else:
            return None
    return length


@models.command(name="default")
@click.argument("model", required=False)
@click.option(
    "--remove", "--remove-default", is_flag=True, help="Go back to the built-in default model"
)
def models_default(model: str | None, remove: bool) -> None:
    """Show the default model, or set it.

    \b
    Examples:
      vibes models default
      vibes models default minilm
      vibes models default --remove
    """
    from ..models import default_model_id, set_default_model

    if model and remove:
        raise click.UsageError("Give a MODEL or --remove, not both")
    if remove:
        set_default_model(None)
    elif model:
        set_default_model(model)
    else:
        click.echo(default_model_id())


@cli.group(cls=DefaultGroup, default_command="list")
def keys() -> None:
    """Manage API keys (default: list their names)."""


@keys.command(name="list")
def keys_list() -> None:
    """List the names of the saved keys (never the keys).

    \b
    Example:
      vibes keys
    """
    from ..keys import key_names

    for name in key_names():
        click.echo(name)


@keys.command(name="set")
@click.argument("name")
@click.option("--value", help="The key (default: prompt for it without echo, or read stdin)")
def keys_set(name: str, value: str | None) -> None:
    """Save an API key under NAME, readable by the user alone.

    \b
    Examples:
      vibes keys set openai
      echo "$KEY" | vibes keys set openai
    """
    import sys

    from ..keys import set_key

    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(f"Key for {name}", hide_input=True)
        else:
            line = sys.stdin.buffer.readline()
            try:
                value = line.decode("utf-8")
            except UnicodeDecodeError:
                raise click.ClickException("The key on stdin is not valid UTF-8 text") from None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise click.ClickException("The key is not valid UTF-8 text") from None
    set_key(name, value)


@keys.command(name="remove")
@click.argument("name")
def keys_remove(name: str) -> None:
    """Delete the saved key NAME.

    \b
    Example:
      vibes keys remove openai
    """
    from ..keys import remove_key

    if not remove_key(name):
        raise click.ClickException(f"No key called {name!r}")


@keys.command(name="path")
def keys_path() -> None:
    """Print the path of the keys file.

    \b
    Example:
      vibes keys path
    """
    from ..keys import keys_path as path_of_keys

    click.echo(path_of_keys())


@cli.group(name="embed-models", cls=DefaultGroup, default_command="list")
def embed_models() -> None:
    """Models and the default, as llm prints them (default: list).

    The same as 'llm embed-models'. 'vibes models' lists vibes' models as JSON lines,
    with their dimensions.
    """


@embed_models.command(name="list")
@click.option(
    "queries",
    "-q",
    "--query",
    multiple=True,
    help="Only models whose name or aliases contain this text; repeatable (all must match)",
)
def embed_models_list(queries: tuple[str, ...]) -> None:
    """List the embedding models and their aliases, as llm does.

    One per line, as 'llm embed-models list' prints them: llm's models (when llm is
    installed), then vibes' own.

    \b
    Examples:
      vibes embed-models
      vibes embed-models list -q 3-small
    """
    from ..models import registered_models

    lines = list(_llm_model_lines())
    listed = {model_id for model_id, _, _ in lines}
    ours: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for entry in registered_models():
        model_id = entry.model.model_id
        if model_id in listed:
            continue
        # One line an id, as llm lists them: a variant sharing an id (minilm-int8) adds
        # its aliases to the model's line.
        _, name, aliases = ours.get(
            model_id, (model_id, f"{type(entry.model).__name__}: {model_id}", ())
        )
        ours[model_id] = (model_id, name, (*aliases, *entry.aliases))
    lines += ours.values()
    for _, name, aliases in lines:
        if all(_matches(query, name, aliases) for query in queries):
            click.echo(name + (f" (aliases: {', '.join(aliases)})" if aliases else ""))


def _matches(query: str, name: str, aliases: Iterable[str]) -> bool:
    wanted = query.lower()
    return any(wanted in text.lower() for text in (name, *aliases))


def _llm_model_lines() -> Iterable[tuple[str, str, tuple[str, ...]]]:
    """(model id, "Class: id", aliases) of each of llm's embedding models, in llm's order;
    none when llm is not installed. A broken llm plugin is a warning, not an error."""
    try:
        import llm
    except ImportError:
        return []
    try:
        found = llm.get_embedding_models_with_aliases()
    except Exception as error:  # a plugin of llm's failed: list vibes' own models anyway
        first = (str(error).strip().splitlines() or [""])[0]
        click.echo(f"Warning: llm's models could not be listed: {first}", err=True)
        return []
    return [(m.model.model_id, str(m.model), tuple(m.aliases)) for m in found]


@embed_models.command(name="default")
@click.argument("model", required=False)
@click.option("--remove-default", is_flag=True, help="Go back to the built-in default model")
def embed_models_default(model: str | None, remove_default: bool) -> None:
    """Show the default embedding model, or set it.

    The same default as 'vibes models default'.

    \b
    Examples:
      vibes embed-models default
      vibes embed-models default minilm
      vibes embed-models default --remove-default
    """
    from ..models import default_model_id, set_default_model

    if remove_default:  # as in llm, it wins over a MODEL given with it
        set_default_model(None)
    elif model:
        set_default_model(model)
    else:
        click.echo(default_model_id())


@cli.command()
def path() -> None:
    """Print the path of the default database.

    $VIBES_DB, else $LLM_EMBEDDINGS_DB, else embeddings.db in the user directory
    ($VIBES_HOME moves it).

    \b
    Example:
      vibes path
    """
    click.echo(default_database())


@cli.command()
def plugins() -> None:
    """List the installed plugins as JSON lines.

    \b
    Example:
      vibes plugins
    """
    from ..plugins import list_plugins

    found = list_plugins()
    if not found:
        click.echo("No plugins installed", err=True)
    emit_json_lines(found)

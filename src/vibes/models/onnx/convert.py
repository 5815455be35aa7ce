"""Converting a sentence-transformers model on disk to ONNX, once (nothing is downloaded).

The whole ``SentenceTransformer`` is exported, not only its transformer: pooling, Dense
layers and Normalize are in the graph, so it computes what ``encode`` computes for any
such model. Each conversion is checked against PyTorch before it is kept; one that does
not agree raises :class:`ConversionError`, and the model stays on PyTorch.

Needs torch, sentence-transformers and ``onnx`` (the TorchScript exporter writes through
it); :mod:`.quantize` needs ``onnx`` and onnxruntime only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .cache import GRAPH, META

#: What an exported graph returns: sentence-transformers' name for the final vector.
OUTPUT = "sentence_embedding"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Cosine the fp32 graph must reach against PyTorch on every check text.
FP32_AGREEMENT = 0.9999

#: Varied texts for the checks (and the int8 calibration): languages, code, numbers, errors.
CHECK_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I install Python packages without internet access?",
    "A library for reading and writing compressed archives in several formats.",
    "Der Zug nach Berlin fährt um acht Uhr ab.",
    "SELECT name, count(*) FROM users GROUP BY name ORDER BY 2 DESC;",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The meeting was postponed until next Tuesday because several members were ill.",
    "error: cannot open file '/etc/config.yaml': permission denied",
    "She sold her old bicycle and bought a second-hand car with the money.",
    "In 1969, Apollo 11 landed the first humans on the Moon.",
    "def add(a, b):\n    return a + b",
    "Prices rose 3.2% in March, driven mainly by energy and food.",
    "utility to manage disk partitions",
    "Python bindings for the GTK toolkit (documentation)",
    "¿Dónde está la biblioteca más cercana?",
    "東京は日本の首都です。",
]


#: Checked too, not calibrated on: whitespace at the ends, and a text longer than any
#: model reads (so that truncation is checked).
AGREEMENT_TEXTS = [
    "  padded with spaces, and a newline\n",
    "\tA Tab First, Then Capitals ",
    " ".join(CHECK_TEXTS * 8),
]


class ConversionError(Exception):
    """A model could not be converted, or its conversion does not agree with PyTorch."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what the exporters and the quantiser say while they work: the tracer's
    warnings, the legacy exporter's deprecation, and onnxruntime.quantization's log lines
    (sent through the root logger)."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def cosines(a: Any, b: Any) -> Any:
    """Row-wise cosine similarity of two float arrays of the same shape."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def _load(model_dir: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    from ..huggingface import offline_environment

    offline_environment()
    try:
        # Eager attention: the graph traced from transformers' sdpa attention carries
        # masking operations that made long texts about 20% slower in ONNX Runtime.
        return SentenceTransformer(
            str(model_dir),
            device="cpu",
            local_files_only=True,
            model_kwargs={"attn_implementation": "eager"},
        )
    except (TypeError, ValueError):  # a model class that takes no attention choice
        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


#: A text whose token ids show how sentence-transformers prepares texts: whether it
#: strips the ends (releases before 6 did) and lower-cases them, or leaves both to the
#: tokenizer.
_PROBE = "  Hello World, MIXED case  "


def _preparation(model: Any, tokenizer_file: Path) -> dict[str, bool]:
    """How this sentence-transformers release prepares a text before its tokenizer, found
    by comparing its token ids for :data:`_PROBE` with the saved tokenizer's."""
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(tokenizer_file))
    saved.no_padding()
    saved.no_truncation()
    # sentence-transformers 6 renamed tokenize to preprocess (the old name logs a warning).
    prepare = getattr(model, "preprocess", None) or model.tokenize
    with quiet():
        expected = [int(i) for i in prepare([_PROBE])["input_ids"][0]]
    for strip in (False, True):
        for lower in (False, True):
            text = _PROBE.strip() if strip else _PROBE
            if saved.encode(text.lower() if lower else text).ids == expected:
                return {"strip": strip, "lowercase": lower}
    raise ConversionError("its saved tokenizer does not give sentence-transformers' token ids")


def _metadata(model: Any) -> dict[str, Any]:
    """What running the graph needs to know that the graph does not say."""
    tokenizer = model.tokenizer
    length = getattr(tokenizer, "model_max_length", None)
    prompt_name = getattr(model, "default_prompt_name", None)
    prompts = getattr(model, "prompts", None) or {}
    return {
        "max_seq_length": model.max_seq_length,
        "model_max_length": int(length) if isinstance(length, int) else None,
        "pad_token_id": getattr(tokenizer, "pad_token_id", None) or 0,
        "default_prompt": prompts.get(prompt_name, "") if prompt_name else "",
    }


def export_fp32(model_dir: Path, work: Path, opset: int = 17) -> dict[str, Any]:
    """Write ``model.onnx`` (weights beside it in ``model.onnx.data``) and
    ``tokenizer.json`` for the model in ``model_dir`` into ``work``; returns the metadata
    to record. Raises :class:`ConversionError` when the model cannot be exported or its
    graph's vectors do not agree with PyTorch's."""
    import numpy as np
    import onnx
    import torch

    from .runtime import OnnxSentenceEncoder

    model = _load(model_dir)
    model.eval()
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConversionError("it has no fast tokenizer (tokenizer.json)")
    backend.save(str(work / "tokenizer.json"))
    names = [name for name in INPUTS if name in tokenizer.model_input_names]
    if "input_ids" not in names or "attention_mask" not in names:
        raise ConversionError(f"its tokenizer gives {tokenizer.model_input_names}")

    class Whole(torch.nn.Module):
        """The model from token ids to the sentence embedding, as one traceable module."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(dict(zip(names, tensors)))[OUTPUT]

    # Two texts of different lengths: the traced graph must keep the padding mask path.
    example = tokenizer(
        ["a short one", "a somewhat longer sentence, so that the first one is padded"],
        padding=True,
        return_tensors="pt",
    )
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[OUTPUT] = {0: "batch"}
    single = work / "single.onnx"
    try:
        with torch.no_grad(), quiet():
            torch.onnx.export(
                Whole(model).eval(),
                tuple(example[name] for name in names),
                str(single),
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except (OSError, MemoryError):
        raise  # the machine's trouble, not the model's: not remembered as a failure
    except Exception as error:  # the exporter fails in many ways on unusual models
        raise ConversionError(f"the ONNX export failed: {type(error).__name__}: {error}") from None
    # Weights beside the graph, not inside it: a session then loads in half the time.
    graph = onnx.load(str(single))
    onnx.save(
        graph,
        str(work / GRAPH),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=GRAPH + ".data",
        size_threshold=1024,
    )
    single.unlink()
    dimensions = int(model.encode(["x"], convert_to_numpy=True).shape[1])
    meta = {
        **_metadata(model),
        **_preparation(model, work / "tokenizer.json"),
        "variant": "fp32",
        "dimensions": dimensions,
    }
    (work / META).write_text(json.dumps(meta), encoding="utf-8")  # the check reads it

    # The check: every text alone and all of them in one padded batch, against PyTorch,
    # with ends of whitespace and a text longer than the model reads among them.
    texts = [*CHECK_TEXTS, *AGREEMENT_TEXTS]
    try:
        encoder = OnnxSentenceEncoder(work)
        batched = encoder.encode(texts, batch_size=len(texts))
        alone = np.concatenate([encoder.encode([text]) for text in texts])
    except Exception as error:  # ONNX Runtime refused the exported graph
        message = f"ONNX Runtime cannot run it: {type(error).__name__}: {error}"
        raise ConversionError(message) from None
    expected = model.encode(texts, convert_to_numpy=True, batch_size=len(texts))
    agreement = float(min(cosines(expected, batched).min(), cosines(expected, alone).min()))
    if not agreement >= FP32_AGREEMENT:
        raise ConversionError(
            f"its ONNX vectors agree with PyTorch's only to cosine {agreement:.5f}"
        )
    meta["agreement"] = {"against": "torch", "min_cosine": round(agreement, 6)}
    return meta

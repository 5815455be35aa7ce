"""Running a converted sentence-transformers model with ONNX Runtime and ``tokenizers``
only: no PyTorch, no transformers, so a query process starts in a fraction of a second.

:class:`OnnxSentenceEncoder` answers the parts of ``SentenceTransformer`` that
:class:`~vibes.models.sentence_transformers.SentenceTransformerModel` uses (``encode``,
``max_seq_length`` and a ``tokenizer`` called the way transformers' tokenizers are), so the
model's truncation counting and token chunking work the same on either runtime.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import GRAPH, read_meta

if TYPE_CHECKING:
    import numpy as np

#: A tokenizer ``model_max_length`` at least this big means "no limit" (transformers'
#: placeholder is 10**30).
NO_LIMIT = 10**12
#: Padded tokens a batch may hold: 256-token texts go 4 at a time. Measured on man pages,
#: 1,024 to 4,096 ran at the same speed (32 texts of 256 tokens ran slower), and peak
#: memory fell from 434 MB (4,096) to 267 MB: ONNX Runtime keeps its largest buffers.
#: Short texts are bounded by ``batch_size`` first.
MAX_BATCH_TOKENS = 1024


def providers() -> list[str]:
    """ONNX Runtime's execution providers to use: CUDA first when this build has it."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    wanted = [p for p in ("CUDAExecutionProvider",) if p in available]
    return [*wanted, "CPUExecutionProvider"]


class TokenizerAdapter:
    """A ``tokenizers.Tokenizer`` called like a transformers tokenizer, for what vibes asks
    of one: token ids and character offsets without special tokens and without truncation.
    """

    is_fast = True

    def __init__(self, tokenizer: Any, model_max_length: int | None, special: int) -> None:
        self._tokenizer = tokenizer
        #: transformers' name for the tokenizer's own limit (None or huge: no limit).
        self.model_max_length = model_max_length if model_max_length is not None else NO_LIMIT
        self._special = special

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._special

    def __call__(
        self,
        text: str | Sequence[str],
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
        truncation: bool = False,
        **_: Any,
    ) -> dict[str, Any]:
        single = isinstance(text, str)
        texts = [text] if isinstance(text, str) else list(text)
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        result: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
        if return_offsets_mapping:
            result["offset_mapping"] = [e.offsets for e in encodings]
        return {key: value[0] for key, value in result.items()} if single else result


class OnnxSentenceEncoder:
    """A converted model directory, loaded into an ONNX Runtime session."""

    def __init__(self, directory: Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.directory = directory
        self.meta = read_meta(directory)
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizer.json carries settings of its own (MiniLM's: cut at 128 tokens and pad
        # every text to 128): off, the model's length is applied per text, padding per batch.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        processor = tokenizer.post_processor
        special = int(processor.num_special_tokens_to_add(False)) if processor else 0
        self.tokenizer = TokenizerAdapter(tokenizer, self.meta.get("model_max_length"), special)
        length = self.meta.get("max_seq_length")
        # A length equal to the tokenizer's own is the tokenizer's (sentence-transformers
        # then follows the tokenizer's limit if it changes); another was set for the model.
        self._max_seq_length = None if length == self.meta.get("model_max_length") else length
        self.dimensions = int(self.meta["dimensions"])
        self.variant = str(self.meta.get("variant", "fp32"))
        self._pad_id = int(self.meta.get("pad_token_id") or 0)
        # How sentence-transformers prepared texts when this was converted (found then).
        self._strip = bool(self.meta.get("strip", True))
        self._lowercase = bool(self.meta.get("lowercase"))
        self._prompt = str(self.meta.get("default_prompt") or "")

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or 0  # 0: one thread per physical core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: nothing on stderr in normal use
        self.providers = providers()
        # When a GPU provider fails to start, onnxruntime prints its fallback to stdout,
        # which would end up in a command's output: sent to stderr instead.
        with contextlib.redirect_stdout(sys.stderr):
            self._session = onnxruntime.InferenceSession(
                str(directory / GRAPH), options, providers=self.providers
            )
        self._inputs = [i.name for i in self._session.get_inputs()]

    @property
    def max_seq_length(self) -> int | None:
        """Tokens a text is cut to, special tokens included (sentence-transformers' name):
        as set for the model, else the tokenizer's limit."""
        if self._max_seq_length:
            return int(self._max_seq_length)
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self._max_seq_length = value

    @property
    def device(self) -> str:
        """Where the model runs: "cuda" or "cpu"."""
        used = self._session.get_providers()
        return "cuda" if used and used[0] == "CUDAExecutionProvider" else "cpu"

    def _limit(self) -> int | None:
        """Tokens a text may have with its special tokens, as sentence-transformers cuts it:
        ``max_seq_length``, else the tokenizer's own limit, else none."""
        length = self.max_seq_length
        return length if length and length < NO_LIMIT else None

    def _encodings(self, texts: Sequence[str]) -> list[Any]:
        # What sentence-transformers does before tokenizing: its default prompt first, and,
        # in the releases that do, the ends stripped and the text lower-cased.
        prepared = [self._prompt + text for text in texts]
        if self._strip:
            prepared = [text.strip() for text in prepared]
        if self._lowercase:
            prepared = [text.lower() for text in prepared]
        encodings = self._tokenizer.encode_batch(prepared, add_special_tokens=False)
        limit = self._limit()
        keep = None if limit is None else max(limit - self.tokenizer.num_special_tokens_to_add(), 0)
        for encoding in encodings:
            if keep is not None and len(encoding.ids) > keep:
                encoding.truncate(keep)
        return [self._tokenizer.post_process(e) for e in encodings]

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> np.ndarray:
        """One float32 row per text, in order. Texts are grouped by token count so that
        batches carry little padding: at most ``batch_size`` texts and
        :data:`MAX_BATCH_TOKENS` padded tokens a batch."""
        import numpy as np

        encodings = self._encodings(sentences)
        result = np.empty((len(encodings), self.dimensions), np.float32)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            # Ascending lengths: the last text taken is the widest of its batch.
            end = start + 1
            while (
                end < len(order)
                and end - start < batch_size
                and (end - start + 1) * len(encodings[order[end]].ids) <= MAX_BATCH_TOKENS
            ):
                end += 1
            batch = order[start:end]
            result[batch] = self._run([encodings[i] for i in batch])
            start = end
        if normalize_embeddings and len(result):
            norms = np.linalg.norm(result, axis=1, keepdims=True)
            result /= np.maximum(norms, 1e-12)
        return result

    def _run(self, encodings: list[Any]) -> np.ndarray:
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        shape = (len(encodings), width)
        feed = {
            "input_ids": np.full(shape, self._pad_id, np.int64),
            "attention_mask": np.zeros(shape, np.int64),
            "token_type_ids": np.zeros(shape, np.int64),
        }
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            feed["input_ids"][row, :length] = encoding.ids
            feed["attention_mask"][row, :length] = 1
            feed["token_type_ids"][row, :length] = encoding.type_ids
        (vectors,) = self._session.run(None, {name: feed[name] for name in self._inputs})
        return np.asarray(vectors, dtype=np.float32)

"""Models run locally by the sentence-transformers library (imported only when first used)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import VibesError
from .base import EmbeddingModel

# pick_device is re-exported: it lived here first, and other code imports it from here.
from .huggingface import LazyLoaded, offline_environment, pick_device

__all__ = ["SentenceTransformerModel", "pick_device"]

#: Characters tokenized at a time per token the model reads, when looking for where it
#: stops: far more than a token covers in any language, so one window nearly always
#: settles it (the model's 254 tokens: windows of about 4,000 characters).
_CHARS_PER_TOKEN = 16
_SPACES = (" ", "\n", "\t", "\r")
#: A tokenizer's ``model_max_length`` at least this big means "no limit was set"
#: (transformers puts 10**30 there): the model then reads texts whole.
_NO_LIMIT = 10**12


def _window_end(text: str, start: int, window: int) -> int:
    """Where a window of ``text`` from ``start`` ends: ``window`` characters on, moved back
    to just after a whitespace (else a punctuation mark) so that no word is split between
    windows: a word split in two tokenizes differently."""
    end = start + window
    if end >= len(text):
        return len(text)
    space = max(text.rfind(c, start, end) for c in _SPACES)
    if space > start:
        return space + 1
    for position in range(end - 1, start, -1):
        if not text[position].isalnum():
            return position + 1
    # A window that is one unbroken word is cut where it ends: the count may then be off
    # by a token a window, where a tokenizer would have read the whole run as one token.
    return end


def _token_ends(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """For each text, the character offset where each of its tokens ends."""
    if not texts:
        return []
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(
            texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [[end for _, end in offsets] for offsets in encoded["offset_mapping"]]
    # Slow tokenizers give no offsets: spread the tokens evenly over the text (only the
    # count of characters cut is then an estimate).
    ids = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    return [
        [round(len(text) * (i + 1) / len(row)) for i in range(len(row))]
        for text, row in zip(texts, ids)
    ]


class _Extent(NamedTuple):
    """How far the model reads a too-long text, and how far it was tokenized to find out."""

    stop: int  #: where the last token the model reads ends
    tokenized: int  #: characters tokenized (a whole number of windows)
    counted: int  #: tokens in them
    density: float  #: tokens a character in the last window, to estimate the rest


def _read_extent(
    tokenizer: Any, text: str, limit: int, window: int, start: int, counted: int
) -> _Extent | None:
    """Go on tokenizing ``text`` a window at a time from ``start`` (``counted`` tokens so
    far) until the model's ``limit`` is passed; None if the text fits. Memory stays that
    of one window, however long the text."""
    while start < len(text):
        end = _window_end(text, start, window)
        (ends,) = _token_ends(tokenizer, [text[start:end]])
        if counted + len(ends) > limit:
            read = limit - counted  # tokens of this window the model reads
            stop = start + ends[read - 1] if read > 0 else start
            return _Extent(stop, end, counted + len(ends), len(ends) / (end - start))
        counted += len(ends)
        start = end
    return None


class ModelRuntimeWarning(UserWarning):
    """A model runs on another runtime or variant than it would have (the message says
    why): PyTorch instead of ONNX Runtime, or fp32 instead of int8."""


def _hub_snapshot(name: str) -> Path | None:
    """The local directory of a model named as on the Hugging Face hub, from the local
    cache only (nothing is downloaded); None when it is not there."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, not a valid name, or no huggingface_hub: PyTorch decides
        return None


def _dimensions(model: Any) -> int:
    """The vector length of a loaded model, on either runtime."""
    known = getattr(model, "dimensions", None)
    if isinstance(known, int):
        return known
    # sentence-transformers 5.x renamed the method; older releases only have the old name.
    get_dimension = getattr(model, "get_embedding_dimension", None)
    if get_dimension is None:
        get_dimension = model.get_sentence_embedding_dimension
    return int(get_dimension())


def _warn(message: str) -> None:
    warnings.warn(message, ModelRuntimeWarning, stacklevel=4)


class SentenceTransformerModel(EmbeddingModel):
    """A sentence-transformers model loaded from a local directory, never from a hub.

    ``path`` may be a callable so that locating the files is deferred until first use.
    """

    # Large batches let sentence-transformers sort texts by length across more of them,
    # which keeps padding (wasted work) low.
    batch_size = 256

    def __init__(
        self,
        model_id: str,
        path: str | Path | Callable[[], str | Path],
        *,
        dimensions: int | None = None,
        encode_batch_size: int = 32,
        query_prefix: str = "",
        document_prefix: str = "",
        normalize: bool | None = None,
        max_length: int | None = None,
        runtime: str | None = None,
        quantize: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        #: Put before every query / document by the model, so callers never type them
        #: (E5's "query: " and "passage: ").
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        #: True or False overrides whether vectors are scaled to unit length.
        self.normalize = normalize
        self.max_length = max_length
        #: "auto" (ONNX Runtime when it can be used, else PyTorch), "onnx" or "torch".
        self.requested_runtime = runtime or "auto"
        #: "int8" for the quantised ONNX variant; None for the exact one.
        self.quantize = quantize
        #: What runs the model once loaded ("onnxruntime int8", say); None before.
        self.runtime_used: str | None = None
        #: Where it runs once loaded: "cpu", "cuda" or "mps".
        self.device: str | None = None
        self._path = path
        self._encode_batch_size = encode_batch_size
        self._model: LazyLoaded[Any] = LazyLoaded(self._load)
        # Each thread's truncation counts (texts seen, texts cut, tokens cut, counted and
        # estimated, characters cut): concurrent searches (a web server's) each report
        # their own cuts, never another's.
        self._counts = threading.local()

    @property
    def path(self) -> Path:
        """The directory the model's files are loaded from (or a name in the HF cache)."""
        return Path(self._path() if callable(self._path) else self._path)

    def load(self) -> Any:
        """Load the model (once) and return what runs it: a ``SentenceTransformer`` on
        PyTorch, or an :class:`~vibes.models.onnx.runtime.OnnxSentenceEncoder`, which
        answers the same calls (``encode``, ``tokenizer``, ``max_seq_length``)."""
        return self._model.get()

    @property
    def runtime(self) -> str:
        """What runs the model: what did, once loaded; else what will ("onnxruntime",
        "onnxruntime int8" or "torch")."""
        if self.runtime_used:
            return self.runtime_used
        from . import onnx

        if onnx.choose(self.requested_runtime) == "torch":
            return "torch"
        path = self.path
        if not path.is_dir():  # a name in the Hugging Face cache: found when loaded
            return "onnxruntime" + (f" {self.quantize}" if self.quantize else "")
        # A failed conversion is remembered: say so without loading anything.
        reason = onnx.known_failure(path, "fp32")
        if reason:
            return f"torch (no ONNX: {reason})"
        if self.quantize and not onnx.known_failure(path, self.quantize):
            return f"onnxruntime {self.quantize}"
        return "onnxruntime"

    def _load(self) -> Any:
        path = self.path
        if not path.is_dir() and (path.is_absolute() or str(path).startswith(".")):
            raise VibesError(f"Model {self.model_id}: directory not found: {path}")
        from . import onnx

        model = None
        if onnx.choose(self.requested_runtime) == "onnx":
            model = self._load_onnx(path)
        if model is None:
            model = self._load_torch(path)
        dimensions = _dimensions(model)
        if self.dimensions is not None and dimensions != self.dimensions:
            raise VibesError(
                f"Model {self.model_id} at {path} makes {dimensions}-dimensional vectors, "
                f"expected {self.dimensions}"
            )
        self.dimensions = dimensions
        if self.max_length:
            model.max_seq_length = self.max_length
        return model

    def _explicitly_onnx(self) -> bool:
        from . import onnx

        return onnx.wanted(self.requested_runtime) == "onnx"

    def _load_onnx(self, path: Path) -> Any:
        """The model on ONNX Runtime; None (after a warning, the first time) when it cannot
        be, for PyTorch to run it. Asked for explicitly, that is an error instead."""
        from . import onnx

        directory = path if path.is_dir() else _hub_snapshot(str(path))
        if directory is None:
            if self._explicitly_onnx():
                raise VibesError(f"Model {self.model_id}: no local copy of {path} to convert")
            return None
        variants = [self.quantize, "fp32"] if self.quantize else ["fp32"]
        for variant in variants:
            try:
                encoder = onnx.load_encoder(self.model_id, directory, variant)
            except onnx.ConversionUnavailable as error:
                if variant != "fp32":
                    # Asked for by name: said on every run that it is not what runs.
                    _warn(f"Model {self.model_id} has no {variant} variant: {error}")
                    continue
                if self._explicitly_onnx():
                    raise VibesError(
                        f"Model {self.model_id} cannot run on ONNX Runtime: {error}"
                    ) from None
                if error.fresh:  # said once; `vibes models` shows it after that
                    _warn(f"Model {self.model_id} runs on PyTorch, not ONNX Runtime: {error}")
                return None
            variant_name = "" if encoder.variant == "fp32" else f" {encoder.variant}"
            self.runtime_used = f"onnxruntime{variant_name}"
            self.device = encoder.device
            return encoder
        return None

    def _load_torch(self, path: Path) -> Any:
        offline_environment()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(path), device=pick_device(), local_files_only=True)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise VibesError(
                f"Model {self.model_id} could not be loaded from {path}: {first_line}"
            ) from None
        self.runtime_used = "torch"
        self.device = model.device.type
        return model

    @property
    def max_tokens(self) -> int | None:
        """How many tokens of a text the model reads, not counting the special tokens its
        tokenizer adds (BERT adds two, ``[CLS]`` and ``[SEP]``; T5 one, ``</s>``). None when
        the model sets no limit (it then reads texts whole)."""
        model = self.load()
        tokenizer = model.tokenizer
        length = model.max_seq_length
        if length is None:  # sentence-transformers before 6 leaves it unset for T5
            length = getattr(tokenizer, "model_max_length", None)
        if length is None or length >= _NO_LIMIT:
            return None
        try:
            special = int(tokenizer.num_special_tokens_to_add(pair=False))
        except (AttributeError, NotImplementedError, TypeError):
            special = 2  # a tokenizer that cannot say: assume BERT's two
        return max(int(length) - special, 1)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each of the model's tokens in ``text``, in order, as
        its tokenizer gives them: one per token the model reads. Spans may overlap (the
        SentencePiece word-start token ``▁`` of T5 shares its span with the next token) or
        cover whitespace; the ``tokens`` chunker makes them disjoint."""
        tokenizer = self.load().tokenizer
        encoded = tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]

    def _count_truncation(self, texts: Sequence[str]) -> list[int | None]:
        """Count the texts too long for the model and what it will not read, so that
        :meth:`take_truncation` can report them once for a whole run. Returns, for each
        text, where to cut it before encoding (None: give it whole).

        Only a bounded prefix of each text is tokenized, in windows of a few thousand
        characters, until the model's limit is passed: tokenizing a 50 MB text whole, only
        to count what is cut, took gigabytes. The cut keeps every token the model reads and
        at least one more, at a whitespace or punctuation mark, so the model still truncates
        it (and embeds the same tokens) without tokenizing the rest either.
        """
        tokenizer = self.load().tokenizer
        limit = self.max_tokens
        if limit is None:  # the model reads every text whole: nothing to count or cut
            self._tally()[0] += len(texts)
            return [None] * len(texts)
        window = (limit + 1) * _CHARS_PER_TOKEN
        cuts: list[int | None] = []
        long = exact_tokens = estimated_tokens = characters = 0
        # Most texts are settled by their first window, all of them in one tokenizer call.
        firsts = [text[: _window_end(text, 0, window)] for text in texts]
        first_counts = _token_ends(tokenizer, firsts)
        for text, first, ends in zip(texts, firsts, first_counts):
            if len(ends) <= limit and len(first) == len(text):
                cuts.append(None)  # the whole text fits
                continue
            found = (
                _Extent(ends[limit - 1] if limit else 0, len(first), len(ends), 0.0)
                if len(ends) > limit
                else _read_extent(tokenizer, text, limit, window, len(first), len(ends))
            )
            if found is None:
                cuts.append(None)
                continue
            long += 1
            characters += len(text) - found.stop
            if found.tokenized == len(text):
                exact_tokens += found.counted - limit
                cuts.append(None)
                continue
            # Not tokenized to the end, by design: the rest is estimated from the last
            # window, the text nearest to it (a first run of whitespace would skew it).
            density = found.density or found.counted / found.tokenized
            rest = (len(text) - found.tokenized) * density
            estimated_tokens += found.counted - limit + round(rest)
            cuts.append(found.tokenized)
        counts = self._tally()
        for position, value in enumerate(
            (len(texts), long, exact_tokens, estimated_tokens, characters)
        ):
            counts[position] += value
        return cuts

    def _tally(self) -> list[int]:
        """This thread's truncation counts (see ``__init__``)."""
        counts: list[int] | None = getattr(self._counts, "values", None)
        if counts is None:
            counts = self._counts.values = [0, 0, 0, 0, 0]
        return counts

    def take_truncation(self) -> str | None:
        """What was cut since this thread's last call, as a sentence, or None; resets the
        count."""
        total, long, exact, estimated, characters = self._tally()
        self._counts.values = [0, 0, 0, 0, 0]
        if not long:
            return None
        tokens = f"about {exact + estimated:,}" if estimated else f"{exact:,}"
        return (
            f"{long} of {total} texts are longer than the {self.max_tokens} tokens "
            f"{self.model_id} reads; {tokens} tokens were cut ({characters:,} characters; "
            "embed with --chunk tokens to keep them)"
        )

    def embed_batch(self, items: Sequence[str | bytes]) -> Any:
        """Embed documents; returns a float32 array with one row per text."""
        return self._encode(items, self.document_prefix)

    def embed_query_batch(self, items: Sequence[str | bytes]) -> Any:
        """Embed search queries, with the query prefix."""
        return self._encode(items, self.query_prefix)

    def _encode(self, items: Sequence[str | bytes], prefix: str) -> Any:
        texts: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise VibesError(f"Model {self.model_id} embeds text only, not binary content")
            texts.append(prefix + item if prefix else item)
        model = self.load()
        cuts = self._count_truncation(texts)
        texts = [text if cut is None else text[:cut] for text, cut in zip(texts, cuts)]
        options: dict[str, Any] = {}
        if self.normalize is not None:
            options["normalize_embeddings"] = self.normalize
        return model.encode(
            texts,
            batch_size=self._encode_batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
            **options,
        )

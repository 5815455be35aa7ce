"""The fast path for sentence-transformers models: converted once to ONNX, run by ONNX
Runtime with ``tokenizers`` (no PyTorch at all once converted).

- :mod:`.convert` exports a model on disk to ONNX and checks it against PyTorch;
- :mod:`.quantize` makes the int8 variant and checks it against fp32;
- :mod:`.cache` keeps the conversions, keyed by the model's files;
- :mod:`.runtime` runs them.

:func:`choose` decides which runtime a model uses and :func:`load_encoder` finds (or makes)
its conversion.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registrations import RUNTIME_CHOICES
from .cache import entry_dir, failure, is_complete, publish, record_failure

if TYPE_CHECKING:
    from .runtime import OnnxSentenceEncoder

#: What a model may ask for: ONNX when it can be used (``auto``), or one of them always.
RUNTIMES = RUNTIME_CHOICES
#: The conversions there are: the exact one, and int8 (``--quantize int8``).
VARIANTS = ("fp32", "int8")
#: Set to ``torch`` or ``onnx`` to make every sentence-transformers model use that runtime.
RUNTIME_ENVIRONMENT = "VIBES_RUNTIME"

__all__ = [
    "RUNTIMES",
    "RUNTIME_ENVIRONMENT",
    "VARIANTS",
    "ConversionUnavailable",
    "available",
    "choose",
    "known_failure",
    "load_encoder",
    "wanted",
]


#: Held while converting (reentrant: int8 converts fp32 first).
_converting = threading.RLock()


class ConversionUnavailable(Exception):
    """The model cannot run on ONNX Runtime here (the message says why). ``fresh`` is
    False when that was found by an earlier run and remembered."""

    def __init__(self, message: str, *, fresh: bool = True) -> None:
        super().__init__(message)
        self.fresh = fresh


def available() -> bool:
    """Whether ONNX Runtime and ``tokenizers`` are installed (checked without importing)."""
    return find_spec("onnxruntime") is not None and find_spec("tokenizers") is not None


def _nvidia_gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible, found without importing torch or onnxruntime."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def _onnx_has_cuda() -> bool:
    try:
        from .runtime import providers

        return "CUDAExecutionProvider" in providers()
    except Exception:  # an onnxruntime that is found but does not load: not this way
        return False


def _torch_is_cpu_only() -> bool:
    """Whether the installed torch is a CPU-only build (its version ends in ``+cpu``):
    then PyTorch would not use a GPU either. Read from the package metadata, not imported."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return True


def wanted(requested: str | None) -> str:
    """What a model that asked for ``requested`` (one of :data:`RUNTIMES`, None meaning
    auto) is to use: ``$VIBES_RUNTIME`` when set, else ``requested``, else ``auto``."""
    value = (os.environ.get(RUNTIME_ENVIRONMENT) or requested or "auto").strip().lower()
    if value not in RUNTIMES:
        from ...errors import VibesError

        raise VibesError(
            f"{RUNTIME_ENVIRONMENT}={value!r}: the runtime must be one of {', '.join(RUNTIMES)}"
        )
    return value


def choose(requested: str | None) -> str:
    """``"onnx"`` or ``"torch"`` for a model that asked for ``requested`` (see
    :func:`wanted`).

    ``auto`` takes ONNX Runtime when it is installed, except on a machine with an NVIDIA
    GPU and an ONNX Runtime without CUDA: PyTorch then runs the model on the GPU.
    """
    wanted_runtime = wanted(requested)
    if wanted_runtime != "auto":
        return wanted_runtime
    if not available():
        return "torch"
    if _nvidia_gpu_present() and not _torch_is_cpu_only() and not _onnx_has_cuda():
        return "torch"
    return "onnx"


def _notify(message: str) -> None:
    # A conversion takes seconds: say so on a terminal, where someone is waiting.
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


def load_encoder(model_id: str, model_dir: Path, variant: str = "fp32") -> OnnxSentenceEncoder:
    """The model in ``model_dir`` ready to run on ONNX Runtime, converted first if this is
    its first use (seconds, once; later runs load it in a fraction of a second).

    Raises :class:`ConversionUnavailable` when it cannot be: a library missing, or a model
    whose conversion failed or did not agree with PyTorch (remembered, so that later runs
    go straight to PyTorch until the model's files change).
    """
    if variant not in VARIANTS:
        raise ConversionUnavailable(f"there is no {variant!r} variant (only {VARIANTS})")
    if not available():
        raise ConversionUnavailable("onnxruntime is not installed")
    entry = entry_dir(model_dir, variant)
    if not is_complete(entry):
        with _converting:  # the exporter keeps process-wide state: one at a time
            _convert(model_id, model_dir, variant, entry)
    from .runtime import OnnxSentenceEncoder

    try:
        return OnnxSentenceEncoder(entry)
    except Exception as error:  # a damaged entry, or one an older onnxruntime cannot read
        raise ConversionUnavailable(
            f"its conversion in {entry} cannot be loaded ({type(error).__name__}: {error}); "
            "delete that directory to convert it again"
        ) from None


def known_failure(model_dir: Path, variant: str = "fp32") -> str | None:
    """Why converting this model failed in an earlier run, or None (not tried, or fine)."""
    return failure(entry_dir(model_dir, variant))


def _convert(model_id: str, model_dir: Path, variant: str, entry: Path) -> None:
    reason = failure(entry)
    if reason is not None:
        raise ConversionUnavailable(reason, fresh=False)
    if find_spec("onnx") is None:
        raise ConversionUnavailable("the onnx package, which converts models, is not installed")
    if variant == "int8":
        fp32 = entry_dir(model_dir, "fp32")
        if not is_complete(fp32):
            _convert(model_id, model_dir, "fp32", fp32)
        from .quantize import quantize_int8

        _notify(f"Quantising {model_id} to int8 (once; a few seconds)...")
        _publish_checked(entry, lambda work: quantize_int8(fp32, work))
    else:
        from .convert import export_fp32

        _notify(f"Converting {model_id} to ONNX for faster embedding (once; about 10 s)...")
        _publish_checked(entry, lambda work: export_fp32(model_dir, work))


def _publish_checked(entry: Path, build: Callable[[Path], dict[str, Any]]) -> None:
    """Publish a conversion; one that fails its check is remembered as failed."""
    from .convert import ConversionError

    try:
        publish(entry, build)
    except ConversionError as error:  # the model's own: remembered
        record_failure(entry, str(error))
        raise ConversionUnavailable(str(error)) from None
    except OSError as error:  # the cache cannot be written: tried again next time
        raise ConversionUnavailable(
            f"cannot write the conversion in {entry.parent} ({error.strerror or error})"
        ) from None
    except Exception as error:  # the exporters fail in many ways; PyTorch still runs it
        raise ConversionUnavailable(f"{type(error).__name__}: {error}") from None

"""What the models loading Hugging Face files from disk share (torch and transformers are
imported only when first used)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def offline_environment() -> None:
    """Keep the Hugging Face libraries off the network and quiet; call before loading.

    Everything a model needs is on disk: never let a library reach for a hub. The variables
    are only defaults, so a user's own settings win.
    """
    # Set before transformers is imported: huggingface_hub reads them at import time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def pick_device() -> str:
    """CUDA or Apple's MPS when present, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class LazyLoaded(Generic[T]):
    """A value made by ``loader`` on the first :meth:`get`, once even with several threads.

    A loader that raises leaves nothing cached, so the next :meth:`get` tries again.
    """

    def __init__(self, loader: Callable[[], T]) -> None:
        self._loader = loader
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, made by the loader if this is the first call."""
        with self._lock:
            if self._value is None:
                self._value = self._loader()
            return self._value

"""The interface every embedding model implements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Vector = Sequence[float]


class EmbeddingModel:
    """An embedding model: turns text (or bytes) into fixed-length vectors.

    Subclasses set :attr:`model_id` and implement :meth:`embed_batch`. Setting
    :attr:`dimensions` lets vibes list the model without loading it.
    """

    model_id: str = ""
    #: Length of every vector, when known without loading the model.
    dimensions: int | None = None
    supports_text: bool = True
    supports_binary: bool = False
    #: The most items one :meth:`embed_batch` call should get; None for no preference.
    batch_size: int | None = None

    @property
    def runtime(self) -> str | None:
        """What runs the model, as ``vibes models`` shows it ("onnxruntime", "torch",
        "api"...); None when the model does not say."""
        return None

    def embed_batch(self, items: Sequence[str | bytes]) -> Iterable[Vector]:
        """Embed documents to be stored: one vector per item, in order."""
        raise NotImplementedError

    def embed_query_batch(self, items: Sequence[str | bytes]) -> Iterable[Vector]:
        """Embed search queries. Models with query-specific prefixes override this."""
        return self.embed_batch(items)

    def take_truncation(self) -> str | None:
        """What the model cut of too-long texts since the last call (a sentence), or None.
        Models that read a limited length report it here, so it is said once per run."""
        return None

    def reject(self, item: str | bytes) -> str | None:
        """Why this model cannot embed ``item`` (it is skipped and counted), or None."""
        return None

    def embed(self, item: str | bytes) -> list[float]:
        """Embed a single document and return its vector as a list of floats."""
        (vector,) = list(self.embed_batch([item]))
        return [float(x) for x in vector]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"


class TruncationWarning(UserWarning):
    """A text was longer than the model reads; the rest was not embedded."""


def warn_truncation(model: EmbeddingModel, stacklevel: int = 3) -> str | None:
    """Warn, once, about what ``model`` cut since the last report: never cut silently.
    Returns the message too, for callers that pass warnings on as data."""
    message = model.take_truncation()
    if message:
        import warnings

        warnings.warn(message, TruncationWarning, stacklevel=stacklevel)
    return message


def embed_array(
    model: EmbeddingModel, contents: Sequence[str | bytes], *, query: bool = False
) -> np.ndarray:
    """Run ``model`` over ``contents`` (as queries with ``query=True``) into one float32
    array; a model's own failure becomes a one-line VibesError, never a traceback."""
    import numpy as np

    from ..errors import VibesError

    if any(isinstance(c, bytes) for c in contents) and not model.supports_binary:
        raise VibesError(f"Model {model.model_id} cannot embed binary content")
    embed = model.embed_query_batch if query else model.embed_batch
    try:
        result = embed(contents)
        array = result if isinstance(result, np.ndarray) else np.asarray(list(result))
    except (VibesError, KeyboardInterrupt):
        raise
    except Exception as error:  # a plugin's failure, reported without a traceback
        raise VibesError(
            f"Model {model.model_id} failed: {type(error).__name__}: {error}"
        ) from error
    return array.astype(np.float32, copy=False)

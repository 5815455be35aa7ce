"""CLIP: images and text in one space ("a dog on the beach" finds photos of one).

Loads a CLIP model and its processor saved with ``save_pretrained`` from a local
directory (transformers, imported on first use). Binary items are images; text items are
text. Items that are not readable images are rejected before embedding, and counted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import VibesError
from .base import EmbeddingModel
from .huggingface import LazyLoaded, offline_environment, pick_device


def read_image(data: bytes) -> Any:
    """A PIL image in RGB from encoded bytes; raises ValueError when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(str(error) or "not an image") from None
    return image.convert("RGB")


class CLIPModel(EmbeddingModel):
    """A CLIP model from a directory: text and images embedded into the same space."""

    supports_text = True
    supports_binary = True
    batch_size = 64

    @property
    def runtime(self) -> str:
        return "torch"

    def __init__(self, model_id: str, path: str | Path, *, dimensions: int | None = None) -> None:
        self.model_id = model_id
        self.path = Path(path)
        self.dimensions = dimensions
        self._loaded = LazyLoaded(self._load)

    def load(self) -> tuple[Any, Any]:
        """Load the model (once) and return the transformers ``(model, processor)``."""
        return self._loaded.get()

    def _load(self) -> tuple[Any, Any]:
        if not self.path.is_dir():
            raise VibesError(f"Model {self.model_id}: directory not found: {self.path}")
        offline_environment()
        from transformers import CLIPModel as TransformersCLIP
        from transformers import CLIPProcessor

        try:
            model = TransformersCLIP.from_pretrained(self.path, local_files_only=True)
            processor = CLIPProcessor.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise VibesError(
                f"Model {self.model_id} could not be loaded from {self.path}: {first}"
            ) from None
        self.device = pick_device()
        # transformers wraps PreTrainedModel.to with functools.wraps(torch.nn.Module.to), so
        # mypy reads the unbound signature and takes the device for ``self``.
        model = model.to(self.device).eval()  # type: ignore[arg-type]
        self.dimensions = int(model.config.projection_dim)
        return model, processor

    def reject(self, item: str | bytes) -> str | None:
        """Why this item cannot be embedded (not a readable image), or None."""
        if isinstance(item, str):
            return None
        try:
            read_image(item)
        except ValueError as error:
            return f"not a readable image ({error})"
        return None

    def embed_batch(self, items: Sequence[str | bytes]) -> Any:
        """One normalised vector per item: images for bytes, text for strings."""
        import numpy as np
        import torch

        model, processor = self.load()
        texts = [(i, item) for i, item in enumerate(items) if isinstance(item, str)]
        images = [(i, item) for i, item in enumerate(items) if not isinstance(item, str)]
        result = np.zeros((len(items), self.dimensions or 0), dtype=np.float32)
        with torch.no_grad():
            if texts:
                inputs = processor(
                    text=[t for _, t in texts], return_tensors="pt", padding=True, truncation=True
                ).to(self.device)
                result[[i for i, _ in texts]] = self._features(model.get_text_features(**inputs))
            if images:
                pictures = []
                for _, data in images:
                    try:
                        pictures.append(read_image(data))
                    except ValueError as error:
                        raise VibesError(f"Not a readable image: {error}") from None
                inputs = processor(images=pictures, return_tensors="pt").to(self.device)
                result[[i for i, _ in images]] = self._features(model.get_image_features(**inputs))
        return result

    @staticmethod
    def _features(output: Any) -> Any:
        # transformers 5 returns a model output whose pooler_output holds the projected
        # features; earlier releases return the tensor itself.
        tensor = getattr(output, "pooler_output", output)
        tensor = tensor / tensor.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return tensor.float().cpu().numpy()

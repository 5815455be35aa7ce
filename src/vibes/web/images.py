"""Stored images (``--binary`` items, a CLIP collection's photos) for web pages: which
blobs are images, and thumbnails of them.

Only raster formats a browser shows and that cannot carry script are served (PNG, JPEG,
GIF, WebP, BMP), recognised by their first bytes, never by what the item claims: an SVG
or an HTML blob is not an image here."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from ..errors import ItemNotFoundError, VibesError

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["image_type", "item_image", "thumbnail"]

#: The largest thumbnail side a request may ask for, in pixels.
MAX_SIZE = 1024

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
#: The sizes of the BMP info headers there are: "BM" alone starts many texts.
_BMP_HEADERS = {12, 40, 52, 56, 64, 108, 124}
#: Pillow's names of the formats served, for the check of a whole image.
_FORMATS = {"PNG", "JPEG", "GIF", "WEBP", "BMP"}


def image_type(blob: bytes | None) -> str | None:
    """The MIME type of ``blob`` when its first bytes are those of an image a page may
    show, else None."""
    if not blob:
        return None
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return "image/webp"
    if blob[:2] == b"BM" and len(blob) >= 26:
        header = int.from_bytes(blob[14:18], "little")
        return "image/bmp" if header in _BMP_HEADERS else None
    for signature, kind in _SIGNATURES:
        if blob.startswith(signature):
            return kind
    return None


def _opened(blob: bytes) -> Any:
    """``blob`` opened by Pillow, which reads its header: an image of a served format,
    or :class:`VibesError`."""
    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(blob))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise VibesError(f"The stored image cannot be read: {error}") from None
    if opened.format not in _FORMATS:
        raise VibesError(f"The stored image is {opened.format}, not a format served here")
    return opened


def thumbnail(blob: bytes, size: int) -> tuple[bytes, str]:
    """``blob`` shrunk to fit ``size`` × ``size`` pixels (never enlarged), as PNG (JPEG for
    photos without transparency). Raises :class:`VibesError` for a blob Pillow cannot read
    (a damaged file, a decompression bomb)."""
    from PIL import Image

    output = io.BytesIO()
    try:
        with _opened(blob) as opened:
            # JPEG decodes straight at a reduced scale: a 20-megapixel photo costs little.
            opened.draft("RGB", (size, size))
            picture = _displayable(opened)
        picture.thumbnail((size, size))
        if picture.mode in ("RGB", "L"):
            picture.save(output, "JPEG", quality=85)
            return output.getvalue(), "image/jpeg"
        picture.save(output, "PNG")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise VibesError(f"The stored image cannot be read: {error}") from None
    return output.getvalue(), "image/png"


def _displayable(picture: Any) -> Any:
    """``picture`` in a mode JPEG or PNG holds (RGB, L, RGBA): CMYK photos and palettes
    converted, 16-bit greys scaled to 8 bits rather than clipped to white."""
    if picture.mode in ("RGB", "L", "RGBA"):
        return picture.copy()
    if picture.mode.startswith("I"):
        return picture.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    transparent = "A" in picture.getbands() or "transparency" in picture.info
    return picture.convert("RGBA" if transparent else "RGB")


def item_image(collection: Collection, item_id: str, size: str | None = None) -> tuple[bytes, str]:
    """The stored image of item ``item_id`` and its MIME type, shrunk to ``size`` pixels
    when given. Raises :class:`ItemNotFoundError` when the item has no image."""
    stored = collection.database.store.get_items(collection.id, [item_id]).get(item_id)
    if stored is None:
        raise ItemNotFoundError(f"No item {item_id[:200]!r} in collection {collection.name!r}")
    kind = image_type(stored.content_blob)
    if kind is None or stored.content_blob is None:
        raise ItemNotFoundError(f"Item {item_id[:200]!r} has no stored image")
    if size is None:
        with _opened(stored.content_blob):
            pass  # its bytes begin like an image's: is it one?
        return stored.content_blob, kind
    if not re.fullmatch("[0-9]{1,5}", size) or not 16 <= int(size) <= MAX_SIZE:
        raise VibesError(f"size must be a whole number of pixels from 16 to {MAX_SIZE}")
    return thumbnail(stored.content_blob, int(size))

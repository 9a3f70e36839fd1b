"""Reading images and masks out of blob storage as the arrays the ``ml`` library takes."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from projects.models import Image


def image_array(image: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image row."""
    return decode_rgb(image_bytes(image))


def image_bytes(image: Image) -> bytes:
    """The stored file of an image row (a storage read: stays on the thread that owns the connection)."""
    with image.file.open("rb") as handle:
        return handle.read()


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 RGB; no database access, so any thread may decode."""
    with PILImage.open(io.BytesIO(data)) as pil:
        return np.asarray(pil.convert("RGB"), dtype=np.uint8).copy()


def mask_array(image: Image) -> np.ndarray | None:
    """(H, W) uint8 mask (non-zero = anomalous) from the image's annotations, or None
    when the image has no raster mask (never annotated, or no polygons)."""
    annotation_set = getattr(image, "annotation_set", None)
    if annotation_set is None or not annotation_set.mask:
        return None
    with annotation_set.mask.open("rb") as handle:
        data = handle.read()
    with PILImage.open(io.BytesIO(data)) as pil:
        mask = np.asarray(pil.convert("L"), dtype=np.uint8)
    if mask.shape != (image.height, image.width):
        raise ValueError(f"mask of image {image.id} is {mask.shape[1]}x{mask.shape[0]}, image is {image.width}x{image.height}")
    return (mask > 127).astype(np.uint8)

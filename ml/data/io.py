"""Reading and resizing images and masks as numpy arrays.

Images are ``(H, W, 3)`` uint8 RGB. Masks are ``(H, W)`` uint8 with values
0 and 255 only: a file is binarised once here, ``> 127`` (i.e. ``> 0.5`` after
scaling to [0, 1]), so every consumer sees the same pixels.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grey, palette, alpha and 16-bit files are converted."""
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(im, dtype=np.float64)
            array = (array / max(array.max(), 1.0) * 255.0).astype(np.uint8)
            return np.repeat(array[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_mask(path: str | Path) -> np.ndarray:
    """(H, W) uint8 0/255: a pixel is anomalous when its grey value is > 127 (0/1 files: > 0)."""
    with Image.open(path) as im:
        array = np.asarray(im.convert("L") if im.mode not in ("L", "1", "I;16", "I") else im)
    return binarize_mask(array)


def binarize_mask(mask: np.ndarray) -> np.ndarray:
    """Any mask -> (H, W) uint8 0/255, ``> 0.5`` after scaling to [0, 1].

    bool masks are taken as they are; integer masks whose maximum exceeds 1
    are scaled by 1/255 (so 0/1 and 0/255 files both work), floats are taken as
    already in [0, 1]. A trailing channel axis is reduced by its maximum.
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    if m.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {m.shape}")
    if m.dtype == bool:
        on = m
    elif np.issubdtype(m.dtype, np.integer):
        on = m > (127 if m.size and m.max() > 1 else 0)
    else:
        on = m > 0.5
    return np.where(on, 255, 0).astype(np.uint8)


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``size`` (square int or (height, width)); area filter when shrinking."""
    height, width = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] > height and image.shape[1] > width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) mask with nearest neighbour, so it stays binary."""
    height, width = (size, size) if isinstance(size, int) else size
    if mask.shape[:2] == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)

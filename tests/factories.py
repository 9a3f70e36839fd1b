"""Tiny, deterministic test data: image bytes and zip archives."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image as PILImage


def make_image_bytes(width: int = 64, height: int = 64, *, seed: int = 0, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """Noise image bytes; a different ``seed`` gives different content (and sha256)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    image = PILImage.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_png(width: int = 64, height: int = 64, *, seed: int = 0) -> bytes:
    return make_image_bytes(width, height, seed=seed, fmt="PNG")


def make_zip(entries: dict[str, bytes]) -> bytes:
    """A zip archive holding ``entries`` (name -> bytes), names written verbatim (even ``../x.png``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()

"""Anomaly maps as 8-bit PNGs plus the value range they stand for.

The browser receives the PNG and ``(vmin, vmax)`` and turns any threshold ``t``
into the pixel level ``255 * (t - vmin) / (vmax - vmin)``, so moving the
threshold slider needs no server round trip.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage


def encode_heatmap(anomaly_map: np.ndarray) -> tuple[bytes, float, float]:
    """(H, W) float map -> (PNG bytes, vmin, vmax). A flat map encodes as all zeros."""
    values = np.nan_to_num(np.asarray(anomaly_map, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.ndim != 2:
        raise ValueError(f"expected an (H, W) anomaly map, got shape {values.shape}")
    vmin, vmax = float(values.min()), float(values.max())
    span = vmax - vmin
    if span <= 0:
        levels = np.zeros(values.shape, dtype=np.uint8)
    else:
        levels = np.clip(np.rint((values - vmin) / span * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(levels, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), vmin, vmax


def decode_heatmap(data: bytes, vmin: float, vmax: float) -> np.ndarray:
    """Inverse of :func:`encode_heatmap`, up to the 8-bit quantisation: (H, W) float32."""
    with PILImage.open(io.BytesIO(data)) as pil:
        levels = np.asarray(pil.convert("L"), dtype=np.float32)
    return (vmin + levels / 255.0 * (vmax - vmin)).astype(np.float32)

"""Deterministic synthetic inspection images: textured surfaces with scratches, spots and cracks.

Used by tests, the demo and the CLI smoke runs. Every image is drawn from its
own generator seeded by ``(seed, normal/anomalous, index)``, so the same
arguments give byte-identical images and a sample does not change when more
are requested. Defects are painted only inside their mask, so the masks are
exact.

Surfaces (``kind``): ``metal`` (brushed metal, also the default ``texture``),
``woven`` (fabric weave) and ``grain`` (stone-like multi-scale noise).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from ml.base import Sample
from ml.formats.mvtec import write_mvtec_sample

SURFACES = ("texture", "metal", "woven", "grain")
DEFECTS = ("scratch", "spot", "crack")


def generate(
    n_normal: int,
    n_anomalous: int,
    size: int = 128,
    seed: int = 0,
    kind: str = "texture",
    defects: Sequence[str] = DEFECTS,
) -> list[Sample]:
    """``n_normal`` defect-free samples (label 0, empty mask) followed by ``n_anomalous``
    samples (label 1) whose defect type cycles through ``defects``.

    Images are (size, size, 3) uint8 RGB, masks (size, size) uint8 0/255.
    Names are ``good_0000`` ... and ``<defect>_0000`` ....
    """
    if kind not in SURFACES:
        raise ValueError(f"unknown surface {kind!r}; known: {', '.join(SURFACES)}")
    unknown = [d for d in defects if d not in _DEFECTS]
    if unknown or not defects:
        raise ValueError(f"unknown defect {unknown[0] if unknown else None!r}; known: {', '.join(DEFECTS)}")
    if size < 16 or seed < 0 or n_normal < 0 or n_anomalous < 0:
        raise ValueError("size must be >= 16 and seed and counts >= 0")
    samples = []
    for i in range(n_normal):
        rng = np.random.default_rng([seed, 0, i])
        image = _surface(kind, size, rng)
        samples.append(Sample(_to_uint8(image), np.zeros((size, size), np.uint8), 0, f"good_{i:04d}"))
    for i in range(n_anomalous):
        rng = np.random.default_rng([seed, 1, i])
        image = _surface(kind, size, rng)
        defect = defects[i % len(defects)]
        mask = _DEFECTS[defect](image, rng)
        samples.append(Sample(_to_uint8(image), mask, 1, f"{defect}_{i:04d}"))
    return samples


def write_synthetic_mvtec(
    root: str | Path,
    n_train: int = 16,
    n_test_normal: int = 6,
    n_test_anomalous: int = 6,
    size: int = 128,
    seed: int = 0,
    kind: str = "texture",
) -> Path:
    """Write a synthetic set in MVTec AD layout (train/good, test/good, test/<defect>, ground_truth/<defect>)."""
    root = Path(root)
    for sample in generate(n_train, 0, size, seed, kind):
        write_mvtec_sample(root, "train", "good", sample.name, sample.image)
    # A different seed stream, so no test image repeats a training image.
    for sample in generate(n_test_normal, n_test_anomalous, size, seed + 1, kind):
        kind_dir = "good" if sample.label == 0 else sample.name.split("_")[0]
        write_mvtec_sample(root, "test", kind_dir, sample.name, sample.image, sample.mask)
    return root


# --- surfaces: (size, size, 3) float32 in [0, 1] -----------------------------------------

def _surface(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    grey, tint = {
        "texture": (_metal, (0.96, 0.98, 1.03)),
        "metal": (_metal, (0.96, 0.98, 1.03)),
        "woven": (_woven, (1.05, 0.98, 0.85)),
        "grain": (_grain, (0.97, 1.02, 0.96)),
    }[kind]
    value = grey(size, rng) + rng.uniform(-0.02, 0.02)
    return np.clip(value[..., None] * np.asarray(tint, np.float32), 0.0, 1.0).astype(np.float32)


def _metal(size: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal((size, size + 64)).astype(np.float32)
    streaks = cv2.blur(noise, (31, 1))[:, 32 : 32 + size]
    streaks /= streaks.std() + 1e-6
    y = np.linspace(-0.5, 0.5, size, dtype=np.float32)[:, None]
    fine = rng.standard_normal((size, size)).astype(np.float32)
    return 0.55 + 0.06 * streaks + rng.uniform(-0.06, 0.06) * y + 0.015 * fine


def _woven(size: int, rng: np.random.Generator) -> np.ndarray:
    period = max(size // 16, 4)
    oy, ox = rng.integers(0, 2 * period, size=2)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    y, x = y + oy, x + ox
    u, v = (x % period) / period, (y % period) / period
    over = ((x // period + y // period) % 2).astype(bool)
    threads = np.where(over, np.sin(np.pi * v), np.sin(np.pi * u))
    fine = rng.standard_normal((size, size)).astype(np.float32)
    return 0.3 + 0.35 * threads + 0.025 * fine


def _grain(size: int, rng: np.random.Generator) -> np.ndarray:
    value = np.zeros((size, size), np.float32)
    for scale, weight in ((1, 0.3), (2, 0.4), (4, 0.6), (8, 0.5)):
        n = max(size // scale, 2)
        layer = rng.standard_normal((n, n)).astype(np.float32)
        value += weight * cv2.resize(layer, (size, size), interpolation=cv2.INTER_CUBIC)
    return 0.5 + 0.1 * value / (value.std() + 1e-6)


# --- defects: paint into ``image`` in place, return the (size, size) uint8 0/255 mask ------

def _scratch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    length = rng.uniform(0.3, 0.6) * size
    angle = rng.uniform(0, np.pi)
    centre = rng.uniform(0.3, 0.7, size=2) * size
    direction = np.array([np.cos(angle), np.sin(angle)])
    bend = np.array([-direction[1], direction[0]]) * rng.uniform(-0.15, 0.15) * length
    t = np.linspace(-0.5, 0.5, 24)[:, None]
    points = centre + t * length * direction + (1 - 4 * t**2) * bend  # a gently curved line
    mask = _draw(size, lambda m: cv2.polylines(m, [np.round(points).astype(np.int32)], False, 255, int(rng.integers(1, 4))))
    delta = rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.4)
    _paint(image, mask, lambda region: region + delta)
    return mask


def _spot(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    centre = tuple(int(c) for c in rng.uniform(0.2, 0.8, size=2) * size)
    axes = tuple(int(a) for a in rng.uniform(0.03, 0.1, size=2) * size + 2)
    angle = float(rng.uniform(0, 180))
    mask = _draw(size, lambda m: cv2.ellipse(m, centre, axes, angle, 0, 360, 255, -1))
    stain = np.asarray(rng.uniform([0.25, 0.12, 0.05], [0.55, 0.3, 0.15]), np.float32)  # rust to dark brown
    _paint(image, mask, lambda region: 0.35 * region + 0.65 * stain)
    return mask


def _crack(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    paths = []
    start = rng.uniform(0.25, 0.75, size=2) * size
    angle = rng.uniform(0, 2 * np.pi)
    for branch in range(int(rng.integers(1, 3))):
        point, heading, path = start.copy(), angle + branch * rng.uniform(0.6, 1.2), []
        for _ in range(int(rng.integers(12, 24))):
            path.append(point.copy())
            heading += rng.normal(0, 0.45)
            point = point + rng.uniform(1.5, 3.0) * np.array([np.cos(heading), np.sin(heading)]) * size / 128
        paths.append(np.round(np.asarray(path)).astype(np.int32))
    thickness = 1 if size < 192 else 2
    mask = _draw(size, lambda m: cv2.polylines(m, paths, False, 255, thickness))
    _paint(image, mask, lambda region: region * 0.3)
    return mask


_DEFECTS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "scratch": _scratch,
    "spot": _spot,
    "crack": _crack,
}


def _draw(size: int, draw: Callable[[np.ndarray], object]) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    draw(mask)
    return mask


def _paint(image: np.ndarray, mask: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> None:
    inside = mask > 0
    image[inside] = np.clip(change(image[inside]), 0.0, 1.0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)

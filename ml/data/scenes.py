"""Tiny deterministic road-like scenes with class-index masks, for tests of semantic pipelines.

Class indices: 0 sky (top band), 1 building (middle band), 2 road (bottom band),
3 "object" (a blob of a colour no band has: the unknown object of an open-set
test), and ``void`` (255 by default) in a thin frame around the image, as
unlabelled borders are in real data. Each band has its own colour with noise,
so a small network can learn them; samples with an object have ``label`` 1 and
a binary ``mask`` of the object.
"""
from __future__ import annotations

import numpy as np

from ml.base import Sample

COLOURS = {0: (120, 170, 235), 1: (150, 120, 100), 2: (90, 90, 95), 3: (230, 40, 200)}


def generate_scenes(n: int, height: int = 64, width: int = 64, seed: int = 0, object_share: float = 0.5, void: int = 255) -> list[Sample]:
    """``n`` scenes; every ``1 / object_share``-th one (by index) holds an unknown object."""
    samples = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        classes = np.empty((height, width), np.uint8)
        horizon = int(height * rng.uniform(0.25, 0.4))
        street = int(height * rng.uniform(0.55, 0.7))
        classes[:horizon] = 0
        classes[horizon:street] = 1
        classes[street:] = 2
        has_object = object_share > 0 and (i % max(1, round(1 / object_share))) == 0
        if has_object:
            cy, cx = rng.integers(street, height - 4), rng.integers(6, width - 6)
            ry, rx = rng.integers(3, max(4, height // 8)), rng.integers(3, max(4, width // 8))
            yy, xx = np.ogrid[:height, :width]
            classes[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 3
        image = np.zeros((height, width, 3), np.float32)
        for c, colour in COLOURS.items():
            image[classes == c] = colour
        image += rng.normal(0, 12, image.shape)
        classes[:2], classes[-2:], classes[:, :2], classes[:, -2:] = void, void, void, void
        mask = ((classes == 3).astype(np.uint8) * 255)
        samples.append(Sample(np.clip(image, 0, 255).astype(np.uint8), mask, int(has_object), f"scene_{i:04d}", classes))
    return samples

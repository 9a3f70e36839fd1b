"""Class-index label images <-> polygons per class (CamVid / Cityscapes style datasets).

A label PNG holds one class index per pixel (the void index where unlabelled).
:func:`class_mask_to_regions` traces every class present (void left out) with
:func:`ml.formats.masks.mask_to_polygons` (OpenCV ``RETR_CCOMP``: holes kept),
in index order; :func:`regions_to_class_mask` paints regions back in order
(a later region covers an earlier one) over the void index. Classes' traced
regions do not overlap, so the round trip gives the label image back up to the
tracer's accuracy (a few pixels along diagonal one-pixel necks).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ml.formats.common import Region
from ml.formats.masks import mask_to_polygons, rasterize


def class_mask_to_regions(classes: np.ndarray, names: Mapping[int, str], void_index: int) -> list[Region]:
    """Regions (label = class name) of every class index of ``names`` present in ``classes`` (H, W).

    A pixel value that is neither a class of ``names`` nor ``void_index`` is a FormatError's
    business: it raises ValueError naming the value."""
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"expected a single-channel (H, W) label image, got shape {classes.shape}")
    present = [int(v) for v in np.unique(classes)]
    stray = [v for v in present if v != void_index and v not in names]
    if stray:
        raise ValueError(f"pixel value {stray[0]} is neither a class of the class list nor its void index {void_index}")
    regions: list[Region] = []
    for index in sorted(v for v in present if v != void_index):
        regions.extend(mask_to_polygons(classes == index, label=names[index]))
    return regions


def regions_to_class_mask(regions: Sequence[Region], indices: Mapping[str, int], width: int, height: int, void_index: int) -> np.ndarray:
    """(height, width) uint8 label image: each region filled with ``indices[region.label]`` in order."""
    out = np.full((int(height), int(width)), void_index, dtype=np.uint8)
    for region in regions:
        out[rasterize([region], width, height) > 0] = indices[region.label]
    return out

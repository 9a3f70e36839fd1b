"""Masks <-> polygons.

Convention (shared by both directions so that they invert each other): a
vertex ``(x, y)`` is the centre of pixel column ``x``, row ``y``, and every
pixel a ring's boundary passes through belongs to the region, for outer rings
and holes alike. :func:`mask_to_polygons` traces boundary pixels with OpenCV
(``RETR_CCOMP``: outer rings and their holes) and :func:`rasterize` fills outer
rings, cuts holes and redraws the hole boundaries, so
``rasterize(mask_to_polygons(m))`` gives ``m`` back up to a few pixels along
diagonal one-pixel necks.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from ml.formats.common import Region, Ring

# Sub-pixel precision of rasterised vertices: 2**_SHIFT steps per pixel.
_SHIFT = 4


def mask_to_polygons(mask: np.ndarray, label: str = "anomaly", min_area: float = 0.0) -> list[Region]:
    """Trace a binary mask ``(H, W)`` (non-zero = region) into regions with holes.

    Components whose outline encloses less than ``min_area`` pixels are
    dropped (0 keeps everything, down to single pixels, which become a small
    square around the pixel centre).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask_to_polygons: expected an (H, W) mask, got shape {mask.shape}")
    binary = (mask > 0).astype(np.uint8)
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    regions = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole; collected with its parent
            continue
        outer = _ring(contour)
        if min_area and cv2.contourArea(contour) + len(contour) / 2 < min_area:
            continue
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            holes.append(_ring(contours[child]))
            child = hierarchy[child][0]
        regions.append(Region(outer=outer, holes=holes, label=label))
    return regions


def _ring(contour: np.ndarray) -> Ring:
    points = contour.reshape(-1, 2).astype(np.float64)
    if len(points) < 3:
        # One pixel or a straight one-pixel line: outline the pixel squares so the
        # polygon has an area and still rasterises to the same pixels.
        corners = np.concatenate([points + d for d in ((-0.45, -0.45), (0.45, -0.45), (0.45, 0.45), (-0.45, 0.45))])
        points = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return [[float(x), float(y)] for x, y in points]


def rasterize(regions: Iterable[Region], width: int, height: int) -> np.ndarray:
    """Binary mask ``(height, width)`` uint8 with 255 inside any region (boundaries included) and 0 elsewhere.

    Holes are cut from their own region only: an overlapping other region still covers them.
    Each region costs its bounding box, not the whole image: 200 small polygons
    on a 40 MP image took 5 s when every region had a full-size layer.
    """
    out = np.zeros((int(height), int(width)), dtype=np.uint8)
    for region in regions:
        outer = _fixed(region.outer)
        if not region.holes:
            cv2.fillPoly(out, [outer], 255, lineType=cv2.LINE_8, shift=_SHIFT)
            continue
        # A region with holes is drawn on a layer the size of its bounding box (a
        # hole must not cut another region), then merged.
        x0, y0, x1, y1 = _box([*region.outer, *(p for h in region.holes for p in h)], int(width), int(height))
        if x1 <= x0 or y1 <= y0:
            continue
        offset = np.array([x0, y0], dtype=np.int32) << _SHIFT
        layer = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(layer, [outer - offset], 255, lineType=cv2.LINE_8, shift=_SHIFT)
        holes = [_fixed(h) - offset for h in region.holes]
        cv2.fillPoly(layer, holes, 0, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.polylines(layer, holes, True, 255, lineType=cv2.LINE_8, shift=_SHIFT)
        window = out[y0:y1, x0:x1]
        np.maximum(window, layer, out=window)
    return out


def _box(ring: Ring, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel bounds ``[x0, x1) x [y0, y1)`` covering ``ring`` (plus a pixel of margin), clipped to the image."""
    points = np.asarray(ring, dtype=np.float64)
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 2
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def _fixed(ring: Ring) -> np.ndarray:
    return np.round(np.asarray(ring, dtype=np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

"""Labelling aids, pure numpy / OpenCV / scikit-image (no Django): brush and
eraser strokes applied to polygons, GrabCut from a box (optionally seeded by an
anomaly map), and SLIC superpixels to snap a click to the edges around it.

Everything returns regions in the mask convention of :mod:`ml.formats.masks`
(a vertex is a pixel centre; boundary pixels belong to the region), so what
the editor shows is what the server rasterises. Work is bounded: strokes and
superpixels are traced inside the bounding box they touch, GrabCut runs on a
crop scaled to at most ``GRABCUT_MAX_SIDE`` pixels, SLIC on the image scaled
to at most ``SUPERPIXEL_MAX_SIDE``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ml.formats.common import Region
from ml.formats.masks import mask_to_polygons, rasterize

GRABCUT_MAX_SIDE = 256
GRABCUT_ITERATIONS = 5
SUPERPIXEL_MAX_SIDE = 512
SUPERPIXEL_SEGMENTS = 600
MAX_STROKE_POINTS = 5000
MAX_RADIUS = 500


class AssistError(ValueError):
    """Bad input for a labelling aid, with a message naming the problem."""


@dataclass
class Stroke:
    """A brush (``erase=False``) or eraser stroke: a polyline in image pixels swept by a disc of ``radius``."""

    points: list[tuple[float, float]]
    radius: float
    erase: bool = False


@dataclass
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    def clipped(self, width: int, height: int, margin: int = 0) -> "Box":
        return Box(max(0, self.x0 - margin), max(0, self.y0 - margin), min(width, self.x1 + margin), min(height, self.y1 + margin))

    def union(self, other: "Box") -> "Box":
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def overlaps(self, other: "Box") -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0


@dataclass
class Labelled:
    """A region with the label class it belongs to (an opaque id for this module)."""

    region: Region
    label: object = None
    source: str = "manual"


def region_box(region: Region) -> Box:
    points = np.asarray(region.outer, dtype=np.float64)
    return Box(int(np.floor(points[:, 0].min())), int(np.floor(points[:, 1].min())),
               int(np.ceil(points[:, 0].max())) + 1, int(np.ceil(points[:, 1].max())) + 1)


def stroke_box(stroke: Stroke) -> Box:
    points = np.asarray(stroke.points, dtype=np.float64)
    r = int(np.ceil(stroke.radius)) + 1
    return Box(int(np.floor(points[:, 0].min())) - r, int(np.floor(points[:, 1].min())) - r,
               int(np.ceil(points[:, 0].max())) + r + 1, int(np.ceil(points[:, 1].max())) + r + 1)


def check_stroke(stroke: Stroke) -> None:
    if not stroke.points:
        raise AssistError("a stroke needs at least one point")
    if len(stroke.points) > MAX_STROKE_POINTS:
        raise AssistError(f"a stroke has at most {MAX_STROKE_POINTS} points")
    if not (0.5 <= stroke.radius <= MAX_RADIUS) or not np.isfinite(stroke.radius):
        raise AssistError(f"brush radius must be between 0.5 and {MAX_RADIUS} pixels")
    if not np.all(np.isfinite(np.asarray(stroke.points, dtype=np.float64))):
        raise AssistError("stroke points must be finite numbers")


def _shift(region: Region, dx: float, dy: float) -> Region:
    move = lambda ring: [[x + dx, y + dy] for x, y in ring]  # noqa: E731
    return Region(outer=move(region.outer), holes=[move(h) for h in region.holes], label=region.label)


def _draw_stroke(mask: np.ndarray, stroke: Stroke, dx: int, dy: int, value: int) -> None:
    """Sweep a disc along the stroke: discs at the points joined by lines of the disc's width.

    OpenCV fills every pixel the circle's outline touches, about pi (r + 0.5)^2 pixels;
    drawing with r - 0.5 gives the pi r^2 pixels whose centres lie within r.
    """
    shift = 4  # sub-pixel precision of centres, as the rasteriser uses
    scale = 1 << shift
    pts = [(int(round((x - dx) * scale)), int(round((y - dy) * scale))) for x, y in stroke.points]
    radius = max(0.0, stroke.radius - 0.5)
    r = int(round(radius * scale))
    for p in pts:
        cv2.circle(mask, p, r, value, -1, lineType=cv2.LINE_8, shift=shift)
    for a, b in zip(pts, pts[1:]):
        cv2.line(mask, a, b, value, max(1, int(round(2 * radius))), lineType=cv2.LINE_8, shift=shift)


def _apply(items: list[Labelled], area: Box, draw, label: object, erase: bool, width: int, height: int) -> list[Labelled]:
    """Regions near ``area`` (of ``label`` for adding, of any label for erasing) are rasterised per label
    inside their common box, ``draw(canvas, box, value)`` paints 255 (add) or 0 (erase) and the result is
    traced back; regions away from ``area`` come back unchanged (same objects, same vertices)."""
    touched = [i for i, it in enumerate(items) if (erase or it.label == label) and region_box(it.region).overlaps(area)]
    labels: list[object] = []
    groups: dict[int, list[int]] = {}
    for i in touched:
        key = next((k for k, known in enumerate(labels) if known == items[i].label), None)
        if key is None:
            labels.append(items[i].label)
            key = len(labels) - 1
        groups.setdefault(key, []).append(i)
    if not erase and label not in labels:
        labels.append(label)
        groups[len(labels) - 1] = []
    replaced: set[int] = set()
    added: list[Labelled] = []
    for key, members in groups.items():
        box = area
        for i in members:
            box = box.union(region_box(items[i].region))
        box = box.clipped(width, height, margin=2)
        canvas = rasterize([_shift(items[i].region, -box.x0, -box.y0) for i in members], box.x1 - box.x0, box.y1 - box.y0)
        draw(canvas, box, 0 if erase else 255)
        added.extend(Labelled(_shift(r, box.x0, box.y0), labels[key]) for r in mask_to_polygons(canvas))
        replaced.update(members)
    return [it for i, it in enumerate(items) if i not in replaced] + added


def paint(items: Sequence[Labelled], strokes: Sequence[Stroke], label: object, width: int, height: int) -> list[Labelled]:
    """Apply brush strokes (adding to the regions of ``label``) and eraser strokes (removing from every region).

    Regions a stroke does not come near are returned unchanged (same vertices);
    the touched ones of each label are rasterised together with the stroke
    inside their common bounding box and traced back to polygons with holes.
    Touching regions of one label merge into one.
    """
    for stroke in strokes:
        check_stroke(stroke)
    out = list(items)
    for stroke in strokes:
        area = stroke_box(stroke).clipped(width, height)
        if area.empty:
            continue
        draw = lambda canvas, box, value, stroke=stroke: _draw_stroke(canvas, stroke, box.x0, box.y0, value)  # noqa: E731
        out = _apply(out, area, draw, label, stroke.erase, width, height)
    return out


def _blit(mask: np.ndarray, x0: int, y0: int):
    def draw(canvas: np.ndarray, box: Box, value: int) -> None:
        h, w = mask.shape
        sub = canvas[y0 - box.y0 : y0 - box.y0 + h, x0 - box.x0 : x0 - box.x0 + w]
        sub[mask[: sub.shape[0], : sub.shape[1]] > 0] = value

    return draw


def add_mask(items: Sequence[Labelled], mask: np.ndarray, x0: int, y0: int, label: object, width: int, height: int) -> list[Labelled]:
    """Union a binary ``mask`` placed at ``(x0, y0)`` into the regions of ``label`` (superpixel clicks, GrabCut)."""
    area = Box(x0, y0, x0 + mask.shape[1], y0 + mask.shape[0]).clipped(width, height)
    return _apply(list(items), area, _blit(mask, x0, y0), label, False, width, height)


def remove_mask(items: Sequence[Labelled], mask: np.ndarray, x0: int, y0: int, width: int, height: int) -> list[Labelled]:
    """Cut a binary ``mask`` placed at ``(x0, y0)`` out of every region."""
    area = Box(x0, y0, x0 + mask.shape[1], y0 + mask.shape[0]).clipped(width, height)
    return _apply(list(items), area, _blit(mask, x0, y0), None, True, width, height)


# --- GrabCut ---------------------------------------------------------------------------------

def grabcut_seed(shape: tuple[int, int], box: Box, heat: np.ndarray | None = None) -> np.ndarray:
    """Initial GrabCut labels for a crop of ``shape`` (h, w): outside ``box`` certain background,
    inside probable foreground. With ``heat`` ((h, w) in [0, 1], 0.5 = the model's threshold), the
    inside is split: above the threshold probable foreground, well below it (< 0.25) probable
    background, and the hottest pixels (>= 0.75) certain foreground. The heat is ignored when it
    marks nothing inside the box (the model saw nothing there: the box alone decides)."""
    seed = np.full(shape, cv2.GC_BGD, np.uint8)
    inside = np.zeros(shape, bool)
    inside[box.y0 : box.y1, box.x0 : box.x1] = True
    seed[inside] = cv2.GC_PR_FGD
    if heat is not None:
        hot = inside & (heat > 0.5)
        if hot.any():
            seed[inside & (heat < 0.25)] = cv2.GC_PR_BGD
            seed[inside & (heat >= 0.75)] = cv2.GC_FGD
    return seed


def grabcut_box(image: np.ndarray, box: Box, heat: np.ndarray | None = None, max_side: int = GRABCUT_MAX_SIDE) -> tuple[np.ndarray, int, int]:
    """Foreground of ``box`` in an (H, W, 3) RGB image: (mask (h, w) uint8 0/255, x0, y0) of a crop around the box.

    GrabCut (Rother et al. 2004) runs on a crop with a margin of background
    around the box, downscaled so its longer side is at most ``max_side``; the
    result is scaled back and confined to the box. ``heat``: the anomaly map
    normalised to [0, 1] with the threshold at 0.5, (H, W), or None.
    """
    height, width = image.shape[:2]
    box = box.clipped(width, height)
    if box.x1 - box.x0 < 3 or box.y1 - box.y0 < 3:
        raise AssistError("the box must be at least 3 x 3 pixels inside the image")
    margin = max(4, int(0.1 * max(box.x1 - box.x0, box.y1 - box.y0)))
    crop = box.clipped(width, height, margin=margin)
    patch = image[crop.y0 : crop.y1, crop.x0 : crop.x1]
    ch, cw = patch.shape[:2]
    scale = min(1.0, max_side / max(ch, cw))
    sw, sh = max(1, int(round(cw * scale))), max(1, int(round(ch * scale)))
    small = cv2.resize(patch, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else patch
    inner = Box(int(np.floor((box.x0 - crop.x0) * scale)), int(np.floor((box.y0 - crop.y0) * scale)),
                int(np.ceil((box.x1 - crop.x0) * scale)), int(np.ceil((box.y1 - crop.y0) * scale)))
    small_heat = None
    if heat is not None:
        hp = np.asarray(heat, np.float32)[crop.y0 : crop.y1, crop.x0 : crop.x1]
        small_heat = cv2.resize(hp, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else hp
    seed = grabcut_seed((sh, sw), inner, small_heat)
    # Where the box covers the whole crop there is no certain background: GrabCut needs some.
    if not (seed == cv2.GC_BGD).any() and not (seed == cv2.GC_PR_BGD).any():
        seed[0, :] = seed[-1, :] = seed[:, 0] = seed[:, -1] = cv2.GC_PR_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[..., ::-1])
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, seed, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1:
        fg = cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR)
    mask = np.where(fg > 0.5, 255, 0).astype(np.uint8)
    confined = np.zeros_like(mask)
    by0, bx0 = box.y0 - crop.y0, box.x0 - crop.x0
    confined[by0 : by0 + box.y1 - box.y0, bx0 : bx0 + box.x1 - box.x0] = mask[by0 : by0 + box.y1 - box.y0, bx0 : bx0 + box.x1 - box.x0]
    return _largest_components(confined), crop.x0, crop.y0


def _largest_components(mask: np.ndarray, keep_fraction: float = 0.05) -> np.ndarray:
    """Drop specks: components under ``keep_fraction`` of the largest one."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= keep_fraction * areas.max()) + 1
    return np.where(np.isin(labels, keep), 255, 0).astype(np.uint8)


# --- superpixels -----------------------------------------------------------------------------

def superpixel_labels(image: np.ndarray, max_side: int = SUPERPIXEL_MAX_SIDE, segments: int = SUPERPIXEL_SEGMENTS) -> np.ndarray:
    """SLIC (Achanta et al. 2012) labels (h, w) int16 of the image scaled so its longer side is at most ``max_side``."""
    from skimage.segmentation import slic

    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else image
    # int16 holds the label of every segment (a few hundred) at half the memory of a cached int32 map.
    return slic(small, n_segments=segments, compactness=10.0, start_label=0, channel_axis=-1).astype(np.int16)


def superpixel_mask(labels: np.ndarray, x: float, y: float, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """The superpixel under image point (x, y), at image resolution: (mask (h, w) 0/255, x0, y0) over its bounding box."""
    if not (0 <= x < width and 0 <= y < height):
        raise AssistError(f"point ({x:g}, {y:g}) is outside the {width} x {height} image")
    lh, lw = labels.shape
    sx, sy = lw / width, lh / height
    label = labels[min(lh - 1, int(y * sy)), min(lw - 1, int(x * sx))]
    ys, xs = np.nonzero(labels == label)
    ly0, ly1, lx0, lx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    x0, x1 = int(np.floor(lx0 / sx)), min(width, int(np.ceil(lx1 / sx)))
    y0, y1 = int(np.floor(ly0 / sy)), min(height, int(np.ceil(ly1 / sy)))
    small = (labels[ly0:ly1, lx0:lx1] == label).astype(np.float32)
    # Sample the low-resolution superpixel at the centres of the full-resolution pixels of its box.
    gx = (np.arange(x0, x1) + 0.5) * sx - 0.5 - lx0
    gy = (np.arange(y0, y1) + 0.5) * sy - 0.5 - ly0
    map_x, map_y = np.meshgrid(gx.astype(np.float32), gy.astype(np.float32))
    up = cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = np.where(up >= 0.5, 255, 0).astype(np.uint8)
    if not mask.any():  # a sliver thinner than one full-resolution pixel: take the clicked pixel
        mask[min(int(y) - y0, mask.shape[0] - 1), min(int(x) - x0, mask.shape[1] - 1)] = 255
    return mask, x0, y0


def pixel_area(regions: Sequence[Region], width: int, height: int) -> int:
    """How many pixels the server's mask gives ``regions`` (for checks and readouts)."""
    return int((rasterize(list(regions), width, height) > 0).sum())

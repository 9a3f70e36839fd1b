"""Labelling aids behind the annotate page's brush, eraser, box and superpixel tools.

Each takes the polygons on the editor's screen (unsaved edits included) and
answers the polygons after the action; nothing is saved here: the editor
keeps the answer as one undoable step and saves it through the versioned
annotation endpoint like any other edit. The pixel work is in :mod:`ml.assist`
and is bounded (crops, a downscaled GrabCut, SLIC on a downscaled image
computed once per image and cached).

The box tool refines GrabCut with the model's anomaly map when one exists.
Predictions live on a higher floor (inspection), so it fills in
``heatmap_providers`` from its ``AppConfig.ready()``: callables
``fn(*, image) -> (H, W) float32 in [0, 1] with the region threshold at 0.5, or None``.
"""
from __future__ import annotations

from typing import Any, Callable

import cv2
import numpy as np
from django.core.cache import cache

from annotations.models import LabelClass
from ml import assist
from ml.formats import FormatError, Region, validate_polygon
from projects.errors import ApplicationError
from projects.models import Image

MAX_POLYGONS = 500
MAX_STROKES = 10  # the editor sends one stroke per request; each is traced inside its own crop
SUPERPIXEL_CACHE_SECONDS = 3600

heatmap_providers: list[Callable[..., np.ndarray | None]] = []


def register_heatmap_provider(fn: Callable[..., np.ndarray | None]) -> Callable[..., np.ndarray | None]:
    if fn in heatmap_providers:
        raise ValueError(f"{fn!r} is already registered as a heatmap provider")
    heatmap_providers.append(fn)
    return fn


def image_heat(*, image: Image) -> np.ndarray | None:
    for fn in heatmap_providers:
        heat = fn(image=image)
        if heat is not None:
            return heat
    return None


def image_pixels(*, image: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the stored image."""
    with image.file.open("rb") as fh:
        data = fh.read()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ApplicationError("the stored image could not be decoded", status=500)
    return np.ascontiguousarray(bgr[..., ::-1])


# --- input ---------------------------------------------------------------------------------

def _label_ref(image: Image, value: Any, where: str) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not LabelClass.objects.filter(project=image.project, pk=value).exists():
        raise ApplicationError(f"{where}: label class {value!r} is not a class of this project", details={"key": "label_class"})
    return value


def _items(image: Image, polygons: Any) -> list[assist.Labelled]:
    if not isinstance(polygons, list):
        raise ApplicationError("polygons must be a list", details={"key": "polygons"})
    if len(polygons) > MAX_POLYGONS:
        raise ApplicationError(f"at most {MAX_POLYGONS} polygons per image", details={"key": "polygons"})
    classes = set(LabelClass.objects.filter(project=image.project).values_list("pk", flat=True))
    items = []
    for index, item in enumerate(polygons):
        where = f"polygon {index}"
        if not isinstance(item, dict) or "outer" not in item:
            raise ApplicationError(f"{where}: expected an object with 'outer'", details={"polygon": index})
        try:
            outer = validate_polygon(item["outer"], image.width, image.height, where=f"{where} outer ring")
            holes = [validate_polygon(h, image.width, image.height, where=f"{where} hole {j}") for j, h in enumerate(item.get("holes") or [])]
        except FormatError as exc:
            raise ApplicationError(str(exc), details={"polygon": index}) from None
        label = item.get("label_class")
        if isinstance(label, dict):
            label = label.get("id")
        if label is not None and label not in classes:
            raise ApplicationError(f"{where}: label class {label!r} is not a class of this project", details={"polygon": index})
        items.append(assist.Labelled(Region(outer=outer, holes=holes), label, str(item.get("source") or "manual")))
    return items


def _out(items: list[assist.Labelled]) -> list[dict[str, Any]]:
    return [{**it.region.to_polygon(), "label_class": it.label, "source": it.source} for it in items]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ApplicationError(f"{where} must be a finite number", details={"key": where})
    return float(value)


def _point(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ApplicationError(f"{where} must be an [x, y] pair", details={"key": where})
    return _number(value[0], where), _number(value[1], where)


# --- the tools -----------------------------------------------------------------------------

def annotation_paint(*, image: Image, polygons: Any, strokes: Any, label_class: Any) -> list[dict[str, Any]]:
    """Brush strokes add to the polygons of ``label_class``; eraser strokes remove from all polygons."""
    items = _items(image, polygons)
    label = _label_ref(image, label_class, "label_class")
    if not isinstance(strokes, list) or not strokes:
        raise ApplicationError("strokes must be a non-empty list", details={"key": "strokes"})
    if len(strokes) > MAX_STROKES:
        raise ApplicationError(f"at most {MAX_STROKES} strokes per request", details={"key": "strokes"})
    parsed = []
    for i, stroke in enumerate(strokes):
        if not isinstance(stroke, dict) or not isinstance(stroke.get("points"), list):
            raise ApplicationError(f"stroke {i}: expected {{points: [[x, y], ...], radius, erase}}", details={"stroke": i})
        if len(stroke["points"]) > assist.MAX_STROKE_POINTS:
            raise ApplicationError(f"stroke {i}: at most {assist.MAX_STROKE_POINTS} points", details={"stroke": i})
        points = [_point(p, f"stroke {i} point") for p in stroke["points"]]
        parsed.append(assist.Stroke(points, _number(stroke.get("radius"), f"stroke {i} radius"), bool(stroke.get("erase", False))))
    try:
        return _out(assist.paint(items, parsed, label, image.width, image.height))
    except assist.AssistError as exc:
        raise ApplicationError(str(exc), details={"key": "strokes"}) from None


def annotation_box(*, image: Image, polygons: Any, box: Any, label_class: Any) -> tuple[list[dict[str, Any]], bool]:
    """GrabCut inside ``box`` [x0, y0, x1, y1], refined by the active model's heatmap when there is one;
    the found region joins the polygons of ``label_class``. Returns (polygons, whether the heatmap was used)."""
    items = _items(image, polygons)
    label = _label_ref(image, label_class, "label_class")
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ApplicationError("box must be [x0, y0, x1, y1]", details={"key": "box"})
    x0, y0, x1, y1 = (_number(v, "box") for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    rect = assist.Box(int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)) + 1, int(np.ceil(y1)) + 1)
    pixels = image_pixels(image=image)
    heat = image_heat(image=image)
    if heat is not None and heat.shape != pixels.shape[:2]:
        heat = cv2.resize(heat.astype(np.float32), (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_LINEAR)
    try:
        mask, mx, my = assist.grabcut_box(pixels, rect, heat)
    except assist.AssistError as exc:
        raise ApplicationError(str(exc), details={"key": "box"}) from None
    if not mask.any():
        raise ApplicationError("nothing stands out from its surroundings in this box; draw it a little larger than the object",
                               details={"key": "box"})
    return _out(assist.add_mask(items, mask, mx, my, label, image.width, image.height)), heat is not None


def superpixels_for(*, image: Image) -> np.ndarray:
    """SLIC labels of the image (downscaled), computed once per image content and cached."""
    key = f"superpixels:v1:{image.sha256}"
    labels = cache.get(key)
    if labels is None:
        labels = assist.superpixel_labels(image_pixels(image=image))
        cache.set(key, labels, SUPERPIXEL_CACHE_SECONDS)
    return labels


def annotation_superpixel(*, image: Image, polygons: Any, point: Any, label_class: Any, erase: bool = False) -> list[dict[str, Any]]:
    """The superpixel under ``point`` joins the polygons of ``label_class`` (or, with ``erase``, leaves every polygon)."""
    items = _items(image, polygons)
    label = _label_ref(image, label_class, "label_class")
    x, y = _point(point, "point")
    try:
        mask, mx, my = assist.superpixel_mask(superpixels_for(image=image), x, y, image.width, image.height)
    except assist.AssistError as exc:
        raise ApplicationError(str(exc), details={"key": "point"}) from None
    if erase:
        return _out(assist.remove_mask(items, mask, mx, my, image.width, image.height))
    return _out(assist.add_mask(items, mask, mx, my, label, image.width, image.height))

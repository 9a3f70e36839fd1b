"""VGG Image Annotator (VIA) 1.x region files, and the 2.x project file's image metadata.

Each entry (keyed ``"<filename><size>"``) has ``filename`` and ``regions``, a
list or an index-keyed dict of ``{"shape_attributes", "region_attributes"}``.
Polygons, rectangles, circles and ellipses are read (the latter two as 32-gons);
points and polylines outline no area and are refused. VIA stores no image size,
so records come back with ``width``/``height`` None: call
:meth:`AnnotatedImage.with_size` once the image is known.
"""
from __future__ import annotations

import math
from typing import Any

from ml.formats.common import AnnotatedImage, FormatError, Region, ellipse_ring, load_json, rect_ring, validate_polygon

# Region attribute names that name the class directly, tried in this order.
LABEL_KEYS = ("label", "class", "name", "type", "category")


def parse_via(data: bytes | str | dict, default_label: str = "anomaly", source: str = "VIA file") -> list[AnnotatedImage]:
    """Parse a VIA 1.x ``via_region_data.json`` (bytes, text or parsed JSON).

    The label of a region is taken from ``region_attributes``: the value of the
    first of :data:`LABEL_KEYS` present; otherwise, when there is exactly one
    attribute with a non-empty text value, that value (``{"Front": "damage"}``
    -> ``"damage"``); otherwise ``default_label``.
    """
    doc = load_json(data, source)
    if isinstance(doc, dict) and "_via_img_metadata" in doc:
        doc = doc["_via_img_metadata"]
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: expected a JSON object keyed by image, got {type(doc).__name__}")
    images = []
    for key, entry in doc.items():
        where = f"{source}: entry {key!r}"
        if not isinstance(entry, dict):
            raise FormatError(f"{where}: expected an object, got {type(entry).__name__}")
        file_name = entry.get("filename")
        if not isinstance(file_name, str) or not file_name:
            raise FormatError(f"{where}: missing 'filename'")
        raw_regions = entry.get("regions", [])
        if isinstance(raw_regions, dict):
            raw_regions = [raw_regions[k] for k in sorted(raw_regions, key=_index_key)]
        if not isinstance(raw_regions, list):
            raise FormatError(f"{source}: {file_name}: 'regions' must be a list or an object")
        regions = [_region(r, f"{source}: {file_name} region {i}", default_label) for i, r in enumerate(raw_regions)]
        images.append(AnnotatedImage(file_name=file_name, width=None, height=None, regions=regions))
    return images


def _index_key(key: str) -> tuple[int, Any]:
    return (0, int(key)) if str(key).isdigit() else (1, str(key))


def _region(raw: Any, where: str, default_label: str) -> Region:
    if not isinstance(raw, dict):
        raise FormatError(f"{where}: expected an object, got {type(raw).__name__}")
    shape = raw.get("shape_attributes")
    if not isinstance(shape, dict):
        raise FormatError(f"{where}: missing 'shape_attributes'")
    return Region(outer=validate_polygon(_shape_ring(shape, where), where=where), label=_label(raw.get("region_attributes"), default_label))


def _shape_ring(shape: dict[str, Any], where: str) -> list:
    kind = shape.get("name")
    try:
        if kind == "polygon":
            xs, ys = shape["all_points_x"], shape["all_points_y"]
            if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                raise FormatError(f"{where}: all_points_x and all_points_y must be lists of equal length")
            return [[x, y] for x, y in zip(xs, ys)]
        if kind == "rect":
            return rect_ring(*(_num(shape[k], where, k) for k in ("x", "y", "width", "height")))
        if kind == "circle":
            cx, cy, r = (_num(shape[k], where, k) for k in ("cx", "cy", "r"))
            return ellipse_ring(cx, cy, r, r)
        if kind == "ellipse":
            cx, cy, rx, ry = (_num(shape[k], where, k) for k in ("cx", "cy", "rx", "ry"))
            return ellipse_ring(cx, cy, rx, ry, _num(shape.get("theta", 0.0), where, "theta"))
    except KeyError as exc:
        raise FormatError(f"{where}: {kind} shape lacks {exc.args[0]!r}") from None
    raise FormatError(f"{where}: shape {kind!r} outlines no area; use polygon, rect, circle or ellipse")


def _num(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _label(attributes: Any, default_label: str) -> str:
    if not isinstance(attributes, dict) or not attributes:
        return default_label
    for key in LABEL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if len(attributes) == 1:
        (value,) = attributes.values()
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default_label

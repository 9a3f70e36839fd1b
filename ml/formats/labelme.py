"""LabelMe JSON files (one per image).

``shapes`` of type polygon (the default when ``shape_type`` is absent),
rectangle (two corners) and circle (centre, point on the rim; read as a
32-gon) outline areas; lines and points do not and are refused with a message.
"""
from __future__ import annotations

import math
from typing import Any

from ml.formats.common import AnnotatedImage, FormatError, Region, ellipse_ring, load_json, validate_polygon


def parse_labelme(data: bytes | str | dict, source: str = "LabelMe file") -> AnnotatedImage:
    doc = load_json(data, source)
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    file_name = doc.get("imagePath")
    if not isinstance(file_name, str) or not file_name:
        raise FormatError(f"{source}: missing 'imagePath'")
    file_name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    width, height = doc.get("imageWidth"), doc.get("imageHeight")
    for key, value in (("imageWidth", width), ("imageHeight", height)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise FormatError(f"{source}: {key} must be a positive integer, got {value!r}")
    shapes = doc.get("shapes", [])
    if not isinstance(shapes, list):
        raise FormatError(f"{source}: 'shapes' must be a list")
    regions = []
    for i, shape in enumerate(shapes):
        where = f"{source}: {file_name} shape {i}"
        if not isinstance(shape, dict):
            raise FormatError(f"{where}: expected an object")
        label = shape.get("label")
        label = label.strip() if isinstance(label, str) and label.strip() else "anomaly"
        regions.append(Region(validate_polygon(_ring(shape, where), width, height, where), [], label))
    return AnnotatedImage(file_name, width, height, regions)


def _ring(shape: dict[str, Any], where: str) -> Any:
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if not isinstance(points, list):
        raise FormatError(f"{where}: missing 'points'")
    if kind == "polygon":
        return points
    if kind not in ("rectangle", "circle"):
        raise FormatError(f"{where}: shape_type {kind!r} outlines no area; use polygon, rectangle or circle")
    try:
        (x0, y0), (x1, y1) = ((float(p[0]), float(p[1])) for p in points)
    except (TypeError, ValueError, IndexError):
        raise FormatError(f"{where}: a {kind} needs exactly two [x, y] points") from None
    if kind == "rectangle":
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    r = math.hypot(x1 - x0, y1 - y0)
    return ellipse_ring(x0, y0, r, r)

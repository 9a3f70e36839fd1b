"""Record types and checks shared by every polygon format.

Coordinates are continuous image coordinates in pixels, ``x`` to the right and
``y`` down, as annotation tools write them. A :class:`Region` is one polygon
with optional holes; its ring boundaries belong to the region when it is
rasterised (see :func:`ml.formats.masks.rasterize`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

Point = list[float]
Ring = list[Point]

# Annotation tools often put a vertex a hair outside the canvas; within this many
# pixels it is clipped to the border instead of refusing the whole file.
BOUNDS_TOLERANCE = 1.0


class FormatError(ValueError):
    """An annotation or dataset file cannot be read; the message names the file, region and problem."""


@dataclasses.dataclass
class Region:
    """One annotated area: an outer ring, holes cut out of it, and a label."""

    outer: Ring
    holes: list[Ring] = dataclasses.field(default_factory=list)
    label: str = "anomaly"

    def to_polygon(self) -> dict[str, Any]:
        """The ``{"outer": ..., "holes": ...}`` shape the annotations app stores."""
        return {"outer": [list(p) for p in self.outer], "holes": [[list(p) for p in h] for h in self.holes]}

    @classmethod
    def from_polygon(cls, polygon: dict[str, Any], label: str = "anomaly", where: str = "polygon") -> "Region":
        """Inverse of :meth:`to_polygon`, validated (no bounds check)."""
        if not isinstance(polygon, dict) or "outer" not in polygon:
            raise FormatError(f"{where}: expected an object with 'outer' (and optional 'holes')")
        holes = polygon.get("holes") or []
        if not isinstance(holes, list):
            raise FormatError(f"{where}: 'holes' must be a list of rings")
        return cls(
            outer=validate_polygon(polygon["outer"], where=f"{where} outer ring"),
            holes=[validate_polygon(h, where=f"{where} hole {i}") for i, h in enumerate(holes)],
            label=label,
        )


@dataclasses.dataclass
class AnnotatedImage:
    """The regions annotated on one image. ``width``/``height`` are None when the format does not say."""

    file_name: str
    width: int | None
    height: int | None
    regions: list[Region] = dataclasses.field(default_factory=list)

    def with_size(self, width: int, height: int) -> "AnnotatedImage":
        """The same record checked against the real image size (vertices clipped within tolerance)."""
        regions = [
            Region(
                outer=validate_polygon(r.outer, width, height, where=f"{self.file_name} region {i} outer ring"),
                holes=[
                    validate_polygon(h, width, height, where=f"{self.file_name} region {i} hole {j}")
                    for j, h in enumerate(r.holes)
                ],
                label=r.label,
            )
            for i, r in enumerate(self.regions)
        ]
        return AnnotatedImage(self.file_name, int(width), int(height), regions)


def validate_polygon(
    points: Any,
    width: float | None = None,
    height: float | None = None,
    where: str = "polygon",
    tolerance: float = BOUNDS_TOLERANCE,
) -> Ring:
    """Check one ring and return it as ``[[x, y], ...]`` floats.

    Requires at least 3 distinct vertices with finite coordinates; when
    ``width``/``height`` are given, every vertex must lie in
    ``[0, width] x [0, height]`` (vertices at most ``tolerance`` outside are
    clipped onto the border). A closing vertex equal to the first one is
    dropped. Raises :class:`FormatError` naming ``where`` and the problem.
    """
    if not isinstance(points, (list, tuple)):
        raise FormatError(f"{where}: expected a list of [x, y] points, got {type(points).__name__}")
    ring: Ring = []
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise FormatError(f"{where}: point {i} is not an [x, y] pair: {p!r}")
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError):
            raise FormatError(f"{where}: point {i} has a non-numeric coordinate: {p!r}") from None
        if isinstance(p[0], bool) or isinstance(p[1], bool) or not (math.isfinite(x) and math.isfinite(y)):
            raise FormatError(f"{where}: point {i} has a non-finite coordinate: {p!r}")
        if width is not None and height is not None:
            x = _within(x, width, tolerance, where, i, "x")
            y = _within(y, height, tolerance, where, i, "y")
        ring.append([x, y])
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    if len({(x, y) for x, y in ring}) < 3:
        raise FormatError(f"{where}: a polygon needs at least 3 distinct points, got {len(ring)}")
    return ring


def _within(value: float, limit: float, tolerance: float, where: str, index: int, axis: str) -> float:
    if value < -tolerance or value > limit + tolerance:
        size = "width" if axis == "x" else "height"
        raise FormatError(f"{where}: point {index} has {axis}={value:g} outside the image ({size} {limit:g})")
    return min(max(value, 0.0), float(limit))


@dataclasses.dataclass(frozen=True)
class PolygonLimits:
    """Bounds on one image's polygon set, checked on the raw input before any geometry work
    (validation, containment and rasterising all grow with the vertex count)."""

    max_vertices_per_ring: int = 10_000
    max_rings_per_polygon: int = 50
    max_polygons_per_image: int = 500

    def check_polygons(self, count: int, where: str = "image") -> None:
        if count > self.max_polygons_per_image:
            raise FormatError(f"{where}: {count} polygons, over the limit of {self.max_polygons_per_image} per image")

    def check_rings(self, count: int, where: str) -> None:
        """``count`` rings: the outer one plus the holes."""
        if count > self.max_rings_per_polygon:
            raise FormatError(
                f"{where}: {count} rings (outer + holes), over the limit of {self.max_rings_per_polygon} per polygon"
            )

    def check_vertices(self, points: Any, where: str) -> None:
        if isinstance(points, (list, tuple)) and len(points) > self.max_vertices_per_ring:
            raise FormatError(
                f"{where}: {len(points)} vertices, over the limit of {self.max_vertices_per_ring} per ring"
            )

    def check_region(self, region: "Region", where: str) -> None:
        self.check_rings(1 + len(region.holes), where)
        self.check_vertices(region.outer, f"{where} outer ring")
        for j, hole in enumerate(region.holes):
            self.check_vertices(hole, f"{where} hole {j}")


def ring_covers(outer: Ring, inner: Ring) -> bool:
    """Every vertex of ``inner`` inside or on ``outer`` (even-odd rule; the boundary counts as inside).

    O((n + m) log n): GEOS indexes the outer ring's edges once (a prepared
    geometry) and locates each inner vertex against the index; the old
    vertex-by-edge loop took a minute for two 11k-point rings.
    """
    import numpy as np
    import shapely

    area = shapely.Polygon(outer)
    shapely.prepare(area)
    points = np.asarray(inner, dtype=np.float64)
    return bool(shapely.intersects_xy(area, points[:, 0], points[:, 1]).all())


def flat_to_ring(values: Iterable[Any], where: str) -> list[list[Any]]:
    """``[x0, y0, x1, y1, ...]`` -> ``[[x0, y0], ...]``; odd lengths are an error."""
    values = list(values)
    if len(values) % 2:
        raise FormatError(f"{where}: a flat coordinate list needs an even number of values, got {len(values)}")
    return [[values[i], values[i + 1]] for i in range(0, len(values), 2)]


def ring_area(ring: Ring) -> float:
    """Unsigned shoelace area of one ring."""
    n = len(ring)
    twice = sum(ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1] for i in range(n))
    return abs(twice) / 2.0


def load_json(data: Any, where: str) -> Any:
    """Accept bytes, str or an already-parsed object; bad JSON is a FormatError."""
    import json

    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{where}: not UTF-8 text ({exc})") from None
    if isinstance(data, str):
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{where}: not valid JSON ({exc})") from None
    return data


def ellipse_ring(cx: float, cy: float, rx: float, ry: float, theta: float = 0.0, vertices: int = 32) -> Ring:
    """A polygon approximating an ellipse (rotated by ``theta`` radians); circles and ellipses become polygons."""
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    ring = []
    for k in range(vertices):
        a = 2 * math.pi * k / vertices
        x, y = rx * math.cos(a), ry * math.sin(a)
        ring.append([cx + x * cos_t - y * sin_t, cy + x * sin_t + y * cos_t])
    return ring


def rect_ring(x: float, y: float, w: float, h: float) -> Ring:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

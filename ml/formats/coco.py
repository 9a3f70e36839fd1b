"""COCO instance annotations (polygon segmentation), read and written.

COCO polygons have no holes: several rings in one ``segmentation`` are parts
whose union is the object. To carry holes, :func:`write_coco` writes a region
with holes as one annotation whose rings are ``[outer, hole_1, ...]`` and lists
the hole positions in ``annotation["attributes"]["hole_rings"]`` (``[1, 2, ...]``).
:func:`parse_coco` reads that back exactly; a tool that ignores the attribute
sees the holes filled, never area outside the object. Without the attribute,
each ring of an annotation is a region of its own. RLE segmentations
(``iscrowd``) are decoded and traced into polygons; an annotation with only a
``bbox`` becomes a rectangle.
"""
from __future__ import annotations

from typing import Any, Iterable

from ml.formats.common import (
    AnnotatedImage,
    FormatError,
    Region,
    flat_to_ring,
    load_json,
    rect_ring,
    ring_area,
    validate_polygon,
)

HOLE_RINGS = "hole_rings"


def parse_coco(data: bytes | str | dict, source: str = "COCO file") -> list[AnnotatedImage]:
    """Parse a COCO instances JSON into one record per entry of ``images`` (in file order)."""
    doc = load_json(data, source)
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(doc.get(key), list):
            raise FormatError(f"{source}: missing the '{key}' list")
    categories = {}
    for i, cat in enumerate(doc.get("categories") or []):
        if not isinstance(cat, dict) or "id" not in cat:
            raise FormatError(f"{source}: category {i} lacks an 'id'")
        categories[cat["id"]] = str(cat.get("name") or cat["id"])

    records: dict[Any, AnnotatedImage] = {}
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            raise FormatError(f"{source}: image {i} needs an 'id' and a 'file_name'")
        if img["id"] in records:
            raise FormatError(f"{source}: image id {img['id']!r} appears twice")
        records[img["id"]] = AnnotatedImage(img["file_name"], _size(img, "width", source), _size(img, "height", source), [])

    for i, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise FormatError(f"{source}: annotation {i} is not an object")
        record = records.get(ann.get("image_id"))
        if record is None:
            raise FormatError(f"{source}: annotation {ann.get('id', i)} refers to unknown image_id {ann.get('image_id')!r}")
        where = f"{source}: {record.file_name} annotation {ann.get('id', i)}"
        category = ann.get("category_id")
        if categories and category not in categories:
            raise FormatError(f"{where}: unknown category_id {category!r}")
        label = categories.get(category, str(category) if category is not None else "anomaly")
        record.regions.extend(_annotation_regions(ann, record, label, where))
    return list(records.values())


def _size(img: dict, key: str, source: str) -> int | None:
    value = img.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise FormatError(f"{source}: image {img.get('file_name')!r} has an invalid {key} {value!r}")
    return int(value)


def _annotation_regions(ann: dict, record: AnnotatedImage, label: str, where: str) -> list[Region]:
    w, h = record.width, record.height
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        return _rle_regions(seg, label, where)
    if isinstance(seg, list) and seg:
        rings = [validate_polygon(flat_to_ring(r, f"{where} ring {j}") if _is_flat(r) else r, w, h, f"{where} ring {j}")
                 for j, r in enumerate(seg)]
        holes = (ann.get("attributes") or {}).get(HOLE_RINGS) if isinstance(ann.get("attributes"), dict) else None
        if holes:
            if not isinstance(holes, list) or any(not isinstance(k, int) or not 0 < k < len(rings) for k in holes):
                raise FormatError(f"{where}: attributes.{HOLE_RINGS} must list ring positions 1..{len(rings) - 1}")
            return [Region(rings[0], [rings[k] for k in holes], label)] + [
                Region(r, [], label) for k, r in enumerate(rings[1:], start=1) if k not in holes
            ]
        return [Region(r, [], label) for r in rings]
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        return [Region(validate_polygon(rect_ring(*bbox), w, h, f"{where} bbox"), [], label)]
    raise FormatError(f"{where}: no polygon, RLE or bbox to read")


def _is_flat(ring: Any) -> bool:
    return isinstance(ring, list) and all(not isinstance(v, (list, tuple)) for v in ring)


def _rle_regions(seg: dict, label: str, where: str) -> list[Region]:
    from ml.formats.masks import mask_to_polygons

    try:
        height, width = (int(v) for v in seg["size"])
        counts = seg["counts"]
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{where}: an RLE segmentation needs 'size' [h, w] and 'counts'") from None
    if isinstance(counts, str):
        counts = _rle_from_string(counts, where)
    if not isinstance(counts, list) or sum(counts) != width * height:
        raise FormatError(f"{where}: RLE counts do not add up to {height}x{width} pixels")
    import numpy as np

    flat = np.zeros(width * height, dtype=np.uint8)
    pos = 0
    for k, run in enumerate(counts):
        if k % 2:
            flat[pos : pos + run] = 255
        pos += run
    mask = flat.reshape((width, height)).T  # COCO RLE runs down columns
    return mask_to_polygons(mask, label=label)


def _rle_from_string(s: str, where: str) -> list[int]:
    """Decode COCO's compressed RLE string (6-bit chunks, differences from two counts back)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise FormatError(f"{where}: truncated RLE string")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def write_coco(images: Iterable[AnnotatedImage], label_names: Iterable[str] | None = None) -> dict[str, Any]:
    """COCO instances dict for ``images``; categories are ``label_names`` (ids 1..n, in order)
    plus any other label found, appended in order of appearance. Holes: see the module docstring."""
    images = list(images)
    names = list(dict.fromkeys(label_names or []))
    for image in images:
        for region in image.regions:
            if region.label not in names:
                names.append(region.label)
    category_id = {name: i + 1 for i, name in enumerate(names)}
    out_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        out_images.append({"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height})
        for region in image.regions:
            rings = [region.outer, *region.holes]
            xs = [p[0] for p in region.outer]
            ys = [p[1] for p in region.outer]
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_id[region.label],
                "segmentation": [[v for p in ring for v in p] for ring in rings],
                "area": ring_area(region.outer) - sum(ring_area(h) for h in region.holes),
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                "iscrowd": 0,
            }
            if region.holes:
                ann["attributes"] = {HOLE_RINGS: list(range(1, len(rings)))}
            annotations.append(ann)
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": "anomaly"} for n, i in category_id.items()],
    }

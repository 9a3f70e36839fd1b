"""Annotation and dataset formats: pure functions, no Django, no torch.

The annotations app's importers and exporters and the ml dataset readers use
these same functions. Every reader turns malformed input into
:class:`FormatError` with a message naming the file, region and problem.
"""
from ml.formats.coco import parse_coco, write_coco
from ml.formats.common import AnnotatedImage, FormatError, Region, validate_polygon
from ml.formats.labelme import parse_labelme
from ml.formats.masks import mask_to_polygons, rasterize
from ml.formats.mvtec import (
    MVTecRecord,
    encode_png,
    mvtec_image_path,
    mvtec_layout,
    mvtec_mask_path,
    write_mvtec_sample,
)
from ml.formats.via import parse_via

__all__ = [
    "AnnotatedImage",
    "FormatError",
    "MVTecRecord",
    "Region",
    "encode_png",
    "mask_to_polygons",
    "mvtec_image_path",
    "mvtec_layout",
    "mvtec_mask_path",
    "parse_coco",
    "parse_labelme",
    "parse_via",
    "rasterize",
    "validate_polygon",
    "write_coco",
    "write_mvtec_sample",
]

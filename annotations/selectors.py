"""Reads of the annotations app: an image's polygons and mask, label classes, import/export jobs."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db.models import QuerySet

from annotations.models import Annotation, AnnotationSet, LabelClass
from ml.formats import Region, encode_png
from projects.models import Image, Job, Project


@dataclass
class ImageAnnotations:
    """What GET /api/images/{id}/annotations/ shows; version 0 and no polygons before the first save."""

    image: Image
    version: int = 0
    is_draft: bool = False
    updated_by: str | None = None
    updated_at: object = None
    annotations: list[Annotation] = field(default_factory=list)


def image_annotations_get(*, image: Image) -> ImageAnnotations:
    annotation_set = AnnotationSet.objects.select_related("updated_by").filter(image=image).first()
    if annotation_set is None:
        return ImageAnnotations(image=image)
    annotations = list(annotation_set.annotations.select_related("label_class", "author"))
    return ImageAnnotations(
        image=image,
        version=annotation_set.version,
        is_draft=annotation_set.is_draft,
        updated_by=annotation_set.updated_by.get_username() if annotation_set.updated_by else None,
        updated_at=annotation_set.updated_at,
        annotations=annotations,
    )


def image_regions(*, image: Image) -> list[Region]:
    """The image's polygons as ``ml.formats.Region`` (label = class name), for exports and training data."""
    annotations = Annotation.objects.filter(annotation_set__image=image).select_related("label_class")
    return [
        Region(outer=a.polygon["outer"], holes=a.polygon.get("holes") or [], label=a.label_class.name)
        for a in annotations
    ]


def image_class_mask_png(*, image: Image) -> bytes | None:
    """PNG bytes of the image's class-index mask (road-scene projects), None when it has none."""
    annotation_set = AnnotationSet.objects.filter(image=image).only("class_mask").first()
    if annotation_set is None or not annotation_set.class_mask.name:
        return None
    with annotation_set.class_mask.open("rb") as fh:
        return fh.read()


def image_mask_png(*, image: Image) -> tuple[bytes, str]:
    """``(png_bytes, etag)`` of the image's raster mask (0/255, image size; all zero without polygons)."""
    annotation_set = AnnotationSet.objects.filter(image=image).only("mask").first()
    if annotation_set is not None and annotation_set.mask.name:
        with annotation_set.mask.open("rb") as fh:
            data = fh.read()
    else:
        import numpy as np

        data = encode_png(np.zeros((image.height, image.width), dtype=np.uint8))
    return data, hashlib.sha256(data).hexdigest()


def label_class_list(*, project: Project) -> QuerySet[LabelClass]:
    """In index order: the annotate page's keys 1-9 follow it."""
    return LabelClass.objects.filter(project=project).order_by("index")


def data_jobs_list(*, project: Project, kind: str) -> QuerySet[Job]:
    """Import or export jobs of a project, newest first."""
    return Job.objects.filter(project=project, kind=kind).select_related("requested_by").order_by("-created_at", "-id")

"""Writes of the annotations app: label classes, polygon sets and their raster masks.

Rules for an image's state when its annotation set is saved (documented in the
API too):

* a person saves one or more polygons -> the image is ``anomalous``;
* a person saves an empty set -> the image is ``normal`` (the annotator's
  "mark normal": saving the full set is a judgement on the whole image);
* a draft made from a model's prediction leaves the state alone (nobody has
  judged the image yet; the inspection app's verdict decides).

Every save replaces the whole set, carries the version it was based on, bumps
the version by one and regenerates the mask, all in one transaction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction

from annotations.models import Annotation, AnnotationSet, LabelClass
from ml.formats import FormatError, Region, encode_png, rasterize, validate_polygon
from ml.formats.common import PolygonLimits, ring_covers
from projects.audit import audit_record
from projects.errors import ApplicationError, Conflict
from projects.models import Image, Project
from projects.storage import save_bytes

DEFAULT_LABEL_CLASS = "anomaly"
# Distinct, readable over greyscale metal and road images; reused in order for new classes.
PALETTE = ("#ff0000", "#00c853", "#2962ff", "#ffab00", "#d500f9", "#00b8d4", "#ff6d00", "#aeea00")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# --- label classes ----------------------------------------------------------------

def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("a label class needs a non-empty name")
    name = name.strip()
    if len(name) > LabelClass._meta.get_field("name").max_length:
        raise ApplicationError(f"label class name {name[:20]!r}... is longer than 100 characters")
    return name


def _clean_color(color: Any) -> str:
    if not isinstance(color, str) or not _COLOR.match(color):
        raise ApplicationError(f"color {color!r} is not a #rrggbb hex colour")
    return color.lower()


def _next_color(project: Project) -> str:
    return PALETTE[LabelClass.objects.filter(project=project).count() % len(PALETTE)]


def label_class_create(*, project: Project, name: str, color: str | None = None, actor) -> LabelClass:
    name = _clean_name(name)
    color = _clean_color(color) if color is not None else _next_color(project)
    try:
        with transaction.atomic():
            label_class = LabelClass.objects.create(project=project, name=name, color=color)
            audit_record(actor, "label_class.create", label_class, project, {"name": name, "color": color})
    except IntegrityError:
        raise Conflict(f"label class {name!r} already exists in this project") from None
    return label_class


def label_class_update(*, label_class: LabelClass, actor, name: str | None = None, color: str | None = None) -> LabelClass:
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _clean_name(name)
    if color is not None:
        changes["color"] = _clean_color(color)
    if not changes:
        return label_class
    try:
        with transaction.atomic():
            for field, value in changes.items():
                setattr(label_class, field, value)
            label_class.save(update_fields=list(changes))
            audit_record(actor, "label_class.update", label_class, label_class.project, changes)
    except IntegrityError:
        raise Conflict(f"label class {changes.get('name')!r} already exists in this project") from None
    return label_class


def label_class_delete(*, label_class: LabelClass, actor) -> None:
    """Delete an unused class; one still drawn on images is refused (409) so no polygon loses its class."""
    used = label_class.annotations.count()
    if used:
        raise Conflict(
            f"label class {label_class.name!r} is used by {used} polygon(s); relabel or delete them first",
            details={"polygons": used},
        )
    with transaction.atomic():
        audit_record(actor, "label_class.delete", label_class, label_class.project, {"name": label_class.name})
        label_class.delete()


def label_class_get_or_create(*, project: Project, name: str = DEFAULT_LABEL_CLASS, actor=None) -> LabelClass:
    """The project's class called ``name``, created on demand (imports, the default class)."""
    name = _clean_name(name)
    existing = LabelClass.objects.filter(project=project, name=name).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            label_class = LabelClass.objects.create(project=project, name=name, color=_next_color(project))
            audit_record(actor, "label_class.create", label_class, project, {"name": name, "on_demand": True})
            return label_class
    except IntegrityError:  # created concurrently by another request
        return LabelClass.objects.get(project=project, name=name)


# --- polygons ------------------------------------------------------------------------

@dataclass
class PolygonInput:
    """One validated polygon ready to save."""

    region: Region
    label_class: LabelClass


def polygons_validate(*, image: Image, polygons: Any, actor=None) -> list[PolygonInput]:
    """Check raw polygons (API JSON or internal callers) against ``image``.

    Each item is ``{"outer": [[x, y], ...], "holes": [[[x, y], ...], ...],
    "label_class": <id> | {"id": <id>} | None}``; a missing label class means the
    project's default class. Raises ApplicationError (400) naming the polygon
    and point at fault; vertices within 1 px outside the image are clipped.
    """
    if not isinstance(polygons, list):
        raise ApplicationError("polygons must be a list")
    limits = polygon_limits()
    try:
        limits.check_polygons(len(polygons))
    except FormatError as exc:
        raise ApplicationError(str(exc), details={"limit": "ANNOTATION_MAX_POLYGONS_PER_IMAGE"}) from None
    classes = {lc.pk: lc for lc in LabelClass.objects.filter(project=image.project)}
    default: LabelClass | None = None
    checked: list[PolygonInput] = []
    for index, item in enumerate(polygons):
        where = f"polygon {index}"
        if not isinstance(item, dict) or "outer" not in item:
            raise ApplicationError(f"{where}: expected an object with 'outer' (and optional 'holes', 'label_class')",
                                   details={"polygon": index})
        holes = item.get("holes") or []
        if not isinstance(holes, list):
            raise ApplicationError(f"{where}: 'holes' must be a list of rings", details={"polygon": index})
        try:
            # Sizes first: nothing below may spend time on an oversized polygon.
            limits.check_rings(1 + len(holes), where)
            limits.check_vertices(item["outer"], f"{where} outer ring")
            for j, hole in enumerate(holes):
                limits.check_vertices(hole, f"{where} hole {j}")
        except FormatError as exc:
            raise ApplicationError(str(exc), details={"polygon": index, "limits": limits_details(limits)}) from None
        try:
            outer = validate_polygon(item["outer"], image.width, image.height, where=f"{where} outer ring")
            rings = [validate_polygon(h, image.width, image.height, where=f"{where} hole {j}") for j, h in enumerate(holes)]
        except FormatError as exc:
            raise ApplicationError(str(exc), details={"polygon": index}) from None
        _check_holes_inside(outer, rings, where, index)
        label_ref = item.get("label_class")
        if isinstance(label_ref, dict):
            label_ref = label_ref.get("id")
        if label_ref is None:
            default = default or label_class_get_or_create(project=image.project, actor=actor)
            label_class = default
        else:
            if isinstance(label_ref, bool) or not isinstance(label_ref, int) or label_ref not in classes:
                raise ApplicationError(f"{where}: label class {label_ref!r} is not a class of this project",
                                       details={"polygon": index})
            label_class = classes[label_ref]
        checked.append(PolygonInput(Region(outer=outer, holes=rings, label=label_class.name), label_class))
    return checked


def polygon_limits() -> PolygonLimits:
    """The configured bounds on one image's polygons (ANNOTATION_MAX_* settings)."""
    return PolygonLimits(
        max_vertices_per_ring=settings.ANNOTATION_MAX_VERTICES_PER_RING,
        max_rings_per_polygon=settings.ANNOTATION_MAX_RINGS_PER_POLYGON,
        max_polygons_per_image=settings.ANNOTATION_MAX_POLYGONS_PER_IMAGE,
    )


def limits_details(limits: PolygonLimits) -> dict[str, int]:
    return {
        "max_vertices_per_ring": limits.max_vertices_per_ring,
        "max_rings_per_polygon": limits.max_rings_per_polygon,
        "max_polygons_per_image": limits.max_polygons_per_image,
    }


def _check_holes_inside(outer: list[list[float]], holes: list[list[list[float]]], where: str, index: int) -> None:
    for j, hole in enumerate(holes):
        if not ring_covers(outer, hole):
            raise ApplicationError(f"{where} hole {j}: the hole is not inside its outer ring",
                                   details={"polygon": index, "hole": j})


def regions_check(*, regions: Sequence[Region], where: str) -> None:
    """Bounds and hole containment of already-parsed regions (imports), as for API saves."""
    limits = polygon_limits()
    try:
        limits.check_polygons(len(regions), where)
        for index, region in enumerate(regions):
            limits.check_region(region, f"{where} region {index}")
    except FormatError as exc:
        raise ApplicationError(str(exc), details={"limits": limits_details(limits)}) from None
    for index, region in enumerate(regions):
        _check_holes_inside(region.outer, region.holes, f"{where} region {index}", index)


def mask_render(*, image: Image, regions: Iterable[Region]) -> bytes:
    """PNG bytes (8-bit grey, 0/255) of the image's size with ``regions`` filled and holes cut."""
    return encode_png(rasterize(list(regions), image.width, image.height))


def _save_set(
    *,
    annotation_set: AnnotationSet,
    checked: Sequence[PolygonInput],
    actor,
    source: str,
    is_draft: bool,
) -> AnnotationSet:
    """Replace the polygons of a locked set, bump its version and regenerate its mask."""
    image = annotation_set.image
    annotation_set.version += 1
    annotation_set.is_draft = is_draft
    annotation_set.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    # No polygons, no stored mask: the mask endpoint answers an all-zero image.
    annotation_set.mask.name = save_bytes(mask_render(image=image, regions=[p.region for p in checked])) if checked else ""
    annotation_set.save()
    annotation_set.annotations.all().delete()
    author = annotation_set.updated_by
    Annotation.objects.bulk_create(
        Annotation(
            annotation_set=annotation_set,
            label_class=p.label_class,
            polygon=p.region.to_polygon(),
            source=source,
            author=author,
            version=annotation_set.version,
        )
        for p in checked
    )
    return annotation_set


def _locked_set(image: Image) -> AnnotationSet:
    """The image's annotation set, created at version 0 if missing, locked for this transaction."""
    AnnotationSet.objects.get_or_create(image=image)
    return AnnotationSet.objects.select_for_update().select_related("image__project").get(image=image)


def annotations_replace(
    *,
    image: Image,
    polygons: Any,
    expected_version: int,
    actor,
    source: str = Annotation.Source.MANUAL,
) -> AnnotationSet:
    """Save the full polygon set of ``image`` if it is still at ``expected_version``.

    A stale version raises Conflict (409) and changes nothing. Invalid polygons
    raise ApplicationError (400) naming the polygon and point. On success the
    version grows by one, the mask is regenerated, the image state follows the
    rules in this module's docstring, and an ``annotations.replace`` audit event
    is recorded.
    """
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
        raise ApplicationError(f"version must be a non-negative integer, got {expected_version!r}")
    with transaction.atomic():
        annotation_set = _locked_set(image)
        if annotation_set.version != expected_version:
            raise Conflict(
                f"the annotations of this image are at version {annotation_set.version}, "
                f"but this save was based on version {expected_version}; reload them and redo the change",
                details={"current_version": annotation_set.version, "your_version": expected_version},
            )
        # Inside the transaction: a default class created on demand goes away with a refused save.
        checked = polygons_validate(image=image, polygons=polygons, actor=actor)
        _save_set(annotation_set=annotation_set, checked=checked, actor=actor, source=source, is_draft=False)
        state = Image.State.ANOMALOUS if checked else Image.State.NORMAL
        if image.state != state:
            Image.objects.filter(pk=image.pk).update(state=state)
            image.state = state
        audit_record(
            actor, "annotations.replace", annotation_set, image.project,
            {"image": image.pk, "version": annotation_set.version, "polygons": len(checked), "state": state},
        )
    return annotation_set


def annotation_draft_from_prediction(*, image: Image, polygons: Any, actor) -> AnnotationSet | None:
    """Start the annotator from a model's predicted region (called by the inspection app).

    Only when the image has no polygons yet (no set, or an empty one, e.g. an
    image once marked normal that a reviewer now calls an anomaly): saves
    ``polygons`` (same shape and checks as :func:`annotations_replace`) as a
    draft (``is_draft=True``, ``source="prediction"``), bumping the version so
    an editor holding the old one gets a 409, and returns the set. Returns None
    and changes nothing when polygons exist already (a person's or an earlier
    draft's), or when ``polygons`` is empty. The image state is left unchanged:
    the caller's verdict sets it.
    """
    if not polygons:
        return None
    with transaction.atomic():
        annotation_set = _locked_set(image)
        if annotation_set.annotations.exists():
            return None
        checked = polygons_validate(image=image, polygons=polygons, actor=actor)
        _save_set(annotation_set=annotation_set, checked=checked, actor=actor,
                  source=Annotation.Source.PREDICTION, is_draft=True)
        audit_record(
            actor, "annotations.draft_from_prediction", annotation_set, image.project,
            {"image": image.pk, "version": annotation_set.version, "polygons": len(checked)},
        )
    return annotation_set


def annotations_set_imported(*, image: Image, checked: Sequence[PolygonInput], actor) -> AnnotationSet:
    """Store imported polygons on a new image (inside the import's transaction; audited once per import)."""
    annotation_set = _locked_set(image)
    return _save_set(annotation_set=annotation_set, checked=checked, actor=actor,
                     source=Annotation.Source.IMPORT, is_draft=False)

"""Writes of the ground floor: projects, members, images (STYLE.md services).

Callers (API views, management commands, other apps) check roles first with
``projects.permissions``; these functions enforce the data rules, run in one
transaction and record an AuditEvent for the acting user.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Iterable

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils.text import slugify
from PIL import Image as PILImage
from PIL import ImageOps

from projects import hooks
from projects.audit import audit_record
from projects.errors import ApplicationError, Conflict, PayloadTooLarge
from projects.models import Image, Membership, Project
from projects.uploads import BadFile, CheckedImage, check_image, expand_zip, is_zip

PROJECT_FIELDS = ("name", "description", "kind", "image_size")


# --- projects -------------------------------------------------------------------
def project_create(
    *, name: str, created_by, slug: str | None = None, kind: str = Project.Kind.UNSUPERVISED,
    description: str = "", image_size: int = 256,
) -> Project:
    """Create a project; its creator becomes its admin."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("name: a project needs a name")
    slug = slug or slugify(name)[:100]
    if not slug:
        raise ApplicationError("slug: cannot derive a slug from the name; give one")
    if kind not in Project.Kind.values:
        raise ApplicationError(f"kind: {kind!r} is not one of {', '.join(Project.Kind.values)}")
    if not 16 <= int(image_size) <= 4096:
        raise ApplicationError("image_size: must be between 16 and 4096 pixels")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name, slug=slug, kind=kind, description=description, image_size=image_size, created_by=created_by
            )
            if created_by is not None:
                Membership.objects.create(project=project, user=created_by, role=Membership.Role.ADMIN)
            audit_record(created_by, "project.create", project, project, {"name": name, "slug": slug})
            from projects import hooks

            hooks.emit_project_created(project=project, actor=created_by)
    except IntegrityError:
        raise Conflict(f"slug: a project with slug {slug!r} already exists") from None
    return project


def project_update(*, project: Project, actor, **changes) -> Project:
    unknown = set(changes) - set(PROJECT_FIELDS)
    if unknown:
        raise ApplicationError(f"cannot change {', '.join(sorted(unknown))}; editable: {', '.join(PROJECT_FIELDS)}")
    if "kind" in changes and changes["kind"] not in Project.Kind.values:
        raise ApplicationError(f"kind: {changes['kind']!r} is not one of {', '.join(Project.Kind.values)}")
    if "name" in changes and not str(changes["name"]).strip():
        raise ApplicationError("name: a project needs a name")
    if "image_size" in changes and not 16 <= int(changes["image_size"]) <= 4096:
        raise ApplicationError("image_size: must be between 16 and 4096 pixels")
    with transaction.atomic():
        before = {field: getattr(project, field) for field in changes}
        for field, value in changes.items():
            setattr(project, field, value)
        project.save(update_fields=list(changes) or None)
        audit_record(actor, "project.update", project, project, {"before": before, "after": changes})
    return project


def project_delete(*, project: Project, actor) -> None:
    """Delete a project and everything in it (images, annotations, jobs, models).

    Images go first: their annotations cascade away with them, which releases the
    label classes that annotations protect from deletion on their own."""
    try:
        with transaction.atomic():
            audit_record(actor, "project.delete", project, None, {"name": project.name, "slug": project.slug, "id": project.pk})
            project.images.all().delete()
            project.delete()
    except (ProtectedError, RestrictedError) as exc:
        objects = getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", ())
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in objects})
        raise Conflict(f"the project still holds {', '.join(kinds)} that block deleting it") from None


# --- members --------------------------------------------------------------------
def _check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise ApplicationError(f"role: {role!r} is not one of {', '.join(Membership.Role.values)}")


def _would_leave_no_admin(project: Project, membership: Membership) -> bool:
    return (
        membership.role == Membership.Role.ADMIN
        and not project.memberships.filter(role=Membership.Role.ADMIN).exclude(pk=membership.pk).exists()
    )


def membership_add(*, project: Project, actor, username: str, role: str) -> Membership:
    _check_role(role)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"username: no active user {username!r}")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(project=project, user=user, role=role)
            audit_record(actor, "membership.add", membership, project, {"username": username, "role": role})
    except IntegrityError:
        raise Conflict(f"{username} is already a member of this project") from None
    return membership


def membership_change_role(*, membership: Membership, actor, role: str) -> Membership:
    _check_role(role)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("project", "user").get(pk=membership.pk)
        if role != Membership.Role.ADMIN and _would_leave_no_admin(membership.project, membership):
            raise Conflict("this is the project's last admin; make someone else admin first")
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(actor, "membership.change_role", membership, membership.project,
                     {"username": membership.user.username, "before": before, "after": role})
    return membership


def membership_remove(*, membership: Membership, actor) -> None:
    with transaction.atomic():
        project = membership.project
        if _would_leave_no_admin(project, membership):
            raise Conflict("this is the project's last admin; make someone else admin first")
        audit_record(actor, "membership.remove", membership, project,
                     {"username": membership.user.username, "role": membership.role})
        membership.delete()


# --- images -----------------------------------------------------------------------
@dataclasses.dataclass
class UploadResult:
    created: list[Image]
    duplicates: list[dict]  # {"file": name, "sha256": ..., "image_id": existing id or None (same batch)}


def _unpack(files: Iterable[tuple[str, bytes]], *, max_pixels: int, max_bytes: int) -> tuple[list[CheckedImage], list[BadFile]]:
    checked: list[CheckedImage] = []
    bad: list[BadFile] = []
    for name, data in files:
        entries = [(name, data)]
        if is_zip(name, data):
            entries, zip_bad = expand_zip(name, data, max_total_bytes=max_bytes)
            bad.extend(zip_bad)
        for entry_name, entry_data in entries:
            outcome = check_image(entry_name, entry_data, max_pixels=max_pixels)
            (bad if isinstance(outcome, BadFile) else checked).append(outcome)
    return checked, bad


def image_upload(
    *, project: Project, files: list[tuple[str, bytes]], uploaded_by, split: str = Image.Split.UNASSIGNED,
    state: str = Image.State.UNLABELED,
) -> UploadResult:
    """Save uploaded images (plain files and/or zip archives of images) into ``project``.

    All or nothing: every file is checked first; if any is bad (corrupt, not an
    image, over MAX_IMAGE_PIXELS, unsafe or non-image zip entry) nothing is
    saved and the ApplicationError lists every bad file in ``details``.
    Images whose bytes are already in the project (same sha256), or repeated in
    the batch, are reported as duplicates and not stored twice. After commit the
    ``images_uploaded`` hooks run (automatic prediction with the active model).
    """
    if split not in Image.Split.values:
        raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}")
    if state not in Image.State.values:
        raise ApplicationError(f"state: {state!r} is not one of {', '.join(Image.State.values)}")
    if not files:
        raise ApplicationError("files: no files were sent")
    total = sum(len(data) for _, data in files)
    if total > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"upload is {total} bytes, over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}")
    checked, bad = _unpack(files, max_pixels=settings.MAX_IMAGE_PIXELS, max_bytes=settings.MAX_UPLOAD_BYTES)
    if bad:
        names = ", ".join(f"{item.name} ({item.error})" for item in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ApplicationError(
            f"{len(bad)} bad file(s), nothing was saved: {names}{more}",
            details={"bad_files": [item.as_dict() for item in bad]},
        )
    created: list[Image] = []
    duplicates: list[dict] = []
    with transaction.atomic():
        existing = dict(
            Image.objects.filter(project=project, sha256__in={item.sha256 for item in checked}).values_list("sha256", "id")
        )
        seen: set[str] = set()
        for item in checked:
            if item.sha256 in existing or item.sha256 in seen:
                duplicates.append({"file": item.name, "sha256": item.sha256, "image_id": existing.get(item.sha256)})
                continue
            seen.add(item.sha256)
            created.append(_image_row(project, item, uploaded_by=uploaded_by, split=split, state=state))
        audit_record(uploaded_by, "image.upload", project, project, {
            "image_ids": [image.pk for image in created], "duplicates": len(duplicates), "split": split, "state": state,
        })
        image_ids = [image.pk for image in created]
        if image_ids:
            transaction.on_commit(lambda: hooks.emit_images_uploaded(project_id=project.pk, image_ids=image_ids))
    return UploadResult(created=created, duplicates=duplicates)


def _image_row(project: Project, item: CheckedImage, *, uploaded_by, split: str, state: str) -> Image:
    image = Image(
        project=project, sha256=item.sha256, width=item.width, height=item.height, content_type=item.content_type,
        split=split, state=state, original_name=item.name[-500:], uploaded_by=uploaded_by,
    )
    image.file.save(item.sha256, ContentFile(item.data, name=item.sha256), save=False)
    image.save()
    return image


def image_create(
    *, project: Project, checked: CheckedImage, uploaded_by, split: str = Image.Split.UNASSIGNED,
    state: str = Image.State.UNLABELED,
) -> tuple[Image, bool]:
    """One image for importers, already accepted by ``projects.uploads.check_image``:
    ``(image, created)``; an image with the same bytes already in the project is
    returned with ``created=False``. Records no audit event (the import that calls
    it records one)."""
    existing = Image.objects.filter(project=project, sha256=checked.sha256).first()
    if existing is not None:
        return existing, False
    return _image_row(project, checked, uploaded_by=uploaded_by, split=split, state=state), True


def image_update(*, image: Image, actor, split: str | None = None, state: str | None = None) -> Image:
    changes = {}
    if split is not None:
        if split not in Image.Split.values:
            raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}")
        changes["split"] = split
    if state is not None:
        if state not in Image.State.values:
            raise ApplicationError(f"state: {state!r} is not one of {', '.join(Image.State.values)}")
        changes["state"] = state
    if not changes:
        raise ApplicationError("nothing to change: send split and/or state")
    with transaction.atomic():
        before = {field: getattr(image, field) for field in changes}
        for field, value in changes.items():
            setattr(image, field, value)
        image.save(update_fields=list(changes))
        audit_record(actor, "image.update", image, image.project, {"before": before, "after": changes})
    return image


def image_delete(*, image: Image, actor) -> None:
    with transaction.atomic():
        audit_record(actor, "image.delete", image, image.project, {"name": image.original_name, "sha256": image.sha256})
        image.delete()


THUMBNAIL_SIZE = 256


def image_thumbnail(*, image: Image) -> tuple[bytes, str]:
    """``(jpeg_bytes, key)`` of the image's thumbnail (longest side 256 px), made
    on first request and kept as a blob; the key (sha256) serves as ETag."""
    if image.thumbnail:
        try:
            with image.thumbnail.open("rb") as stored:
                return stored.read(), image.thumbnail.name
        except FileNotFoundError:
            pass
    with image.file.open("rb") as original, PILImage.open(original) as picture:
        picture.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))  # JPEG: decode at reduced size
        small = ImageOps.exif_transpose(picture)
        if small.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit or float scans: stretch to 8 bit for display
            values = np.asarray(small, dtype=np.float32)
            small = PILImage.fromarray((values * (255.0 / max(float(values.max()), 1.0))).astype(np.uint8))
        small = small.convert("RGB")
        small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    image.thumbnail.save("thumbnail.jpg", ContentFile(data, name="thumbnail.jpg"), save=False)
    Image.objects.filter(pk=image.pk).update(thumbnail=image.thumbnail.name)
    return data, image.thumbnail.name


# --- blobs ------------------------------------------------------------------------
def _blob_file_fields():
    """(model, field name) of every FileField stored in the database blob storage."""
    from django.apps import apps
    from django.db.models import FileField

    from projects.storage import DatabaseBlobStorage

    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, FileField) and isinstance(field.storage, DatabaseBlobStorage):
                yield model, field.name


def blob_collect_garbage(*, min_age_s: float = 24 * 3600, dry_run: bool = False) -> int:
    """Delete blobs that no file field of any model references any more; returns how many.

    Blobs are shared between rows (same bytes, one blob) and outlive the rows that
    used them (deleted images, replaced masks). Only blobs older than ``min_age_s``
    go, so bytes saved by a job that has not yet committed its rows are kept.
    """
    from datetime import timedelta

    from django.utils import timezone

    from projects.models import Blob

    referenced: set[str] = set()
    for model, name in _blob_file_fields():
        for key in model._default_manager.exclude(**{name: ""}).values_list(name, flat=True).iterator():
            referenced.add(key.rsplit("/", 1)[-1])
    cutoff = timezone.now() - timedelta(seconds=min_age_s)
    candidates = Blob.objects.filter(created_at__lt=cutoff).values_list("sha256", flat=True)
    garbage = [key for key in candidates.iterator() if key not in referenced]
    if not dry_run:
        for start in range(0, len(garbage), 500):
            Blob.objects.filter(sha256__in=garbage[start:start + 500]).delete()
    return len(garbage)

"""Writes of the ground floor: projects, members, images (STYLE.md services).

Callers (API views, management commands, other apps) check roles first with
``projects.permissions``; these functions enforce the data rules, run in one
transaction and record an AuditEvent for the acting user.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import tempfile
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils.text import slugify
from PIL import Image as PILImage
from PIL import ImageOps

from projects import hooks
from projects.audit import audit_record
from projects.errors import ApplicationError, Conflict, PayloadTooLarge
from projects.filenames import clean_file_name
from projects.jobs import job_create
from projects.models import Image, Job, Membership, Project
from projects.storage import save_bytes
from projects.uploads import BadFile, CheckedImage, check_image, expand_zip, is_zip

logger = logging.getLogger(__name__)

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


Source = bytes | BinaryIO  # an uploaded file: bytes, or a file object (spooled to disk by Django)


def _source_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    source.seek(0)
    return source.read()


def _source_size(source) -> int:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    size = getattr(source, "size", None)
    if size is None:
        size = source.seek(0, 2)
        source.seek(0)
    return int(size)


def _unpack(files, *, max_pixels: int, max_bytes: int) -> tuple[list[CheckedImage], list[BadFile]]:
    """Check every file (and zip entry), one at a time: the bytes of an image that passes
    go to the blob storage at once and only its metadata is kept, so an upload never
    sits in memory whole. (Should a later file be bad, those blobs belong to no image
    and blob_collect_garbage removes them; nothing visible was saved.)"""
    checked: list[CheckedImage] = []
    bad: list[BadFile] = []
    for name, source in files:
        data = _source_bytes(source)
        entries = [(name, data)]
        if is_zip(name, data):
            entries, zip_bad = expand_zip(name, data, max_total_bytes=max_bytes)
            bad.extend(zip_bad)
        del data
        for index in range(len(entries)):
            (entry_name, entry_data), entries[index] = entries[index], None  # let each entry's bytes go once checked
            outcome = check_image(entry_name, entry_data, max_pixels=max_pixels)
            if isinstance(outcome, BadFile):
                bad.append(outcome)
            elif not bad:
                save_bytes(outcome.data)
                checked.append(dataclasses.replace(outcome, data=b""))  # stored under its sha256
    return checked, bad


def image_upload(
    *, project: Project, files: list[tuple[str, Source]], uploaded_by, split: str = Image.Split.UNASSIGNED,
    state: str = Image.State.UNLABELED,
) -> UploadResult:
    """Save uploaded images (plain files and/or zip archives of images) into ``project``.

    All or nothing: every file is checked first; if any is bad (corrupt, not an
    image, over MAX_IMAGE_PIXELS, unsafe or non-image zip entry) nothing is
    saved and the ApplicationError lists every bad file in ``details``.
    Images whose bytes are already in the project (same sha256), or repeated in
    the batch, are reported as duplicates and not stored twice. The
    ``images_uploaded`` hooks run in the same transaction (automatic prediction with the
    active model; an unreachable job queue refuses the upload with 503).
    """
    if split not in Image.Split.values:
        raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}")
    if state not in Image.State.values:
        raise ApplicationError(f"state: {state!r} is not one of {', '.join(Image.State.values)}")
    if not files:
        raise ApplicationError("files: no files were sent")
    total = sum(_source_size(source) for _, source in files)
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
            created.append(_image_row(project, item, uploaded_by=uploaded_by, split=split, state=state, stored=True))
        audit_record(uploaded_by, "image.upload", project, project, {
            "image_ids": [image.pk for image in created], "duplicates": len(duplicates), "split": split, "state": state,
        })
        image_ids = [image.pk for image in created]
        if image_ids:
            transaction.on_commit(lambda: image_thumbnails_enqueue(image_ids=image_ids))
            # Inside the transaction: the inference job a hook makes commits with the images, and a
            # hook that refuses (job queue unreachable: 503) refuses the upload, nothing saved.
            hooks.emit_images_uploaded(project_id=project.pk, image_ids=image_ids, refusable=True)
    return UploadResult(created=created, duplicates=duplicates)


UPLOAD_TASK = "projects.tasks.upload_images"


def upload_is_large(*, files: list[tuple[str, Source]]) -> bool:
    """Whether an upload is processed by a job instead of inside the request (UPLOAD_JOB_MIN_FILES
    files or UPLOAD_JOB_MIN_BYTES bytes): checking and storing thousands of images takes minutes."""
    return len(files) >= settings.UPLOAD_JOB_MIN_FILES or sum(_source_size(s) for _, s in files) >= settings.UPLOAD_JOB_MIN_BYTES


def image_upload_job_start(
    *, project: Project, files: list[tuple[str, Source]], uploaded_by, split: str = Image.Split.UNASSIGNED,
    state: str = Image.State.UNLABELED,
) -> Job:
    """Queue a large upload as an import job: the files are packed into one stored zip (copied
    from disk piece by piece) and the job runs :func:`image_upload` on them in a worker, with
    the same all-or-nothing rule; its result lists what was created and the duplicates."""
    if split not in Image.Split.values:
        raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}")
    if state not in Image.State.values:
        raise ApplicationError(f"state: {state!r} is not one of {', '.join(Image.State.values)}")
    total = sum(_source_size(source) for _, source in files)
    if total > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"upload is {total} bytes, over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}")
    with tempfile.TemporaryFile(prefix="upload-", suffix=".zip") as packed:
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for index, (name, source) in enumerate(files):
                # Numbered entries keep every file apart (two uploads may share a name).
                info = zipfile.ZipInfo(f"{index:06d}/{PurePosixPath(name.replace(chr(92), '/')).name or 'file'}")
                with archive.open(info, "w", force_zip64=True) as target:
                    if isinstance(source, (bytes, bytearray)):
                        target.write(source)
                    else:
                        source.seek(0)
                        shutil.copyfileobj(source, target, 1024 * 1024)
        packed.seek(0)
        return job_create(
            kind=Job.Kind.IMPORT, project=project, requested_by=uploaded_by, task_name=UPLOAD_TASK,
            params={"format": "upload", "files": len(files), "bytes": total, "split": split, "state": state},
            input_file=File(packed, name="upload.zip"), input_name="upload.zip",
        )


def image_upload_job_run(ctx) -> dict:
    """The work of a large-upload job (``upload_images`` task, through ``projects.jobs.run_job``)."""
    job = ctx.job
    ctx.progress("unpacking", 0.0)
    with tempfile.TemporaryFile(prefix="upload-", suffix=".zip") as local:
        with job.input_file.open("rb") as stored:
            shutil.copyfileobj(stored, local, 1024 * 1024)
        local.seek(0)
        with zipfile.ZipFile(local) as archive:
            files = [(info.filename.split("/", 1)[-1], archive.open(info)) for info in archive.infolist() if not info.is_dir()]
            ctx.progress("checking and storing images", 0.1)
            result = image_upload(project=job.project, files=files, uploaded_by=job.requested_by,
                                  split=job.params.get("split", Image.Split.UNASSIGNED),
                                  state=job.params.get("state", Image.State.UNLABELED))
    return {"created": [image.pk for image in result.created], "images_created": len(result.created),
            "duplicates": result.duplicates}


def _image_row(project: Project, item: CheckedImage, *, uploaded_by, split: str, state: str, stored: bool = False) -> Image:
    """``stored``: the bytes are already in the blob storage under the sha256 (uploads)."""
    image = Image(
        project=project, sha256=item.sha256, width=item.width, height=item.height, content_type=item.content_type,
        split=split, state=state, original_name=clean_file_name(item.name), uploaded_by=uploaded_by,
    )
    if stored:
        image.file.name = item.sha256
    else:
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
THUMBNAIL_TASK = "projects.tasks.make_thumbnails"
THUMBNAIL_BATCH = 100


def image_thumbnail_make(*, image: Image) -> str:
    """Render and store the image's thumbnail (JPEG, longest side 256 px); returns its key.

    Decoding a large original takes seconds, so this runs in the ``make_thumbnails``
    task (queued after an upload commits, or by the first request that found none),
    never in a request. Content-addressed: running it twice stores nothing new.
    """
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
    return image.thumbnail.name


def image_thumbnails_make(*, image_ids: list[int]) -> int:
    """Task body: thumbnails of those of ``image_ids`` that have none (deleted images and
    unreadable originals are skipped); returns how many were made."""
    made = 0
    for image in Image.objects.filter(pk__in=image_ids, thumbnail=""):
        try:
            image_thumbnail_make(image=image)
        except (FileNotFoundError, OSError, ValueError) as exc:
            logger.warning("no thumbnail for image %s: %s", image.pk, exc)
            continue
        made += 1
    return made


def image_thumbnails_enqueue(*, image_ids: list[int]) -> None:
    """Queue ``make_thumbnails`` for ``image_ids`` (in batches). Never fails its caller: with the
    broker unreachable the images keep their placeholder until a later request queues them again."""
    from config.celery import app

    for start in range(0, len(image_ids), THUMBNAIL_BATCH):
        batch = list(image_ids[start : start + THUMBNAIL_BATCH])
        try:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                app.tasks[THUMBNAIL_TASK].apply(args=[batch])
            else:
                app.send_task(THUMBNAIL_TASK, args=[batch], retry=False)
        except Exception as exc:
            logger.warning("could not queue thumbnails of %d image(s): %s", len(batch), exc)
            return


def image_thumbnail_request(*, image: Image) -> None:
    """A request found no thumbnail: queue one, at most once a minute per image and web process."""
    from django.core.cache import cache

    if cache.add(f"thumbnail-requested:{image.pk}", True, timeout=60):
        image_thumbnails_enqueue(image_ids=[image.pk])


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

"""Exporting a project's images and polygons: COCO (polygons) and MVTec AD layout (images + masks).

Writing is done by the pure writers in :mod:`ml.formats`; this module decides
what goes where and packs the result as a folder or a zip.

``coco``::

    annotations.json          COCO instances; file_name relative to this file;
                              images[].attributes = {"split", "state"} (ours,
                              read back by our importer); holes as
                              ml.formats.write_coco writes them
    images/<split>/<name>     original bytes

``mvtec``::

    train/good/<stem>.png             normal images of the train split
    test/good/<stem>.png              normal images of every other split
    test/<kind>/<stem>.png            anomalous images; <kind> = their most used label class
    ground_truth/<kind>/<stem>_mask.png   their 0/255 masks (all zero when no polygons)

``semantic`` (road-scene projects; read back by the ``semantic`` importer)::

    classes.json                      {"classes": [{"index", "name", "color"}], "void_index"}
    <split>/images/<name>             original bytes
    <split>/labels/<stem>.png         class-index mask (void where nothing is drawn)

Unlabeled images have no place in the MVTec layout and are left out (counted
in the result); anomalous images of the train split go to ``test/<kind>``
because MVTec's ``train/`` holds normal images only.
"""
from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
from django.core.files import File
from PIL import Image as PILImage

from annotations.models import Annotation
from annotations.selectors import image_mask_png
from ml.base import no_progress
from ml.formats import AnnotatedImage, Region, encode_png, mvtec_image_path, mvtec_mask_path, write_coco
from ml.formats.mvtec import NORMAL_KIND
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.jobs import JobContext, job_create
from projects.models import Image, Job, Project

EXPORT_FORMATS = ("coco", "mvtec", "semantic")
EXPORT_TASK = "annotations.export_dataset"
Progress = Callable[[str, float], None]
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/bmp": ".bmp", "image/tiff": ".tif", "image/webp": ".webp"}


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ApplicationError(f"format: unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")


def _image_bytes(image: Image) -> bytes:
    with image.file.open("rb") as fh:
        return fh.read()


def _regions_by_image(project: Project) -> dict[int, list[Region]]:
    regions: dict[int, list[Region]] = {}
    for a in Annotation.objects.filter(annotation_set__image__project=project).select_related("label_class", "annotation_set"):
        regions.setdefault(a.annotation_set.image_id, []).append(
            Region(outer=a.polygon["outer"], holes=a.polygon.get("holes") or [], label=a.label_class.name)
        )
    return regions


class _UniqueNames:
    """Names within one folder of the export; a repeated name gets ``_<image id>`` before its extension."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, path: str, image_id: int) -> str:
        if path in self.used:
            p = PurePosixPath(path)
            path = str(p.with_name(f"{p.stem}_{image_id}{p.suffix}"))
        self.used.add(path)
        return path


def _export_coco(project: Project, out: Path, progress: Progress) -> dict[str, Any]:
    images = list(Image.objects.filter(project=project).order_by("id"))
    regions = _regions_by_image(project)
    unique = _UniqueNames()
    records, attributes = [], []
    for index, image in enumerate(images):
        stem = PurePosixPath(image.original_name).stem or f"image_{image.pk}"
        suffix = PurePosixPath(image.original_name).suffix.lower() or _EXTENSIONS.get(image.content_type, ".png")
        name = unique(f"images/{image.split}/{stem}{suffix}", image.pk)
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(_image_bytes(image))
        records.append(AnnotatedImage(name, image.width, image.height, regions.get(image.pk, [])))
        attributes.append({"split": image.split, "state": image.state})
        progress("writing", (index + 1) / max(len(images), 1))
    label_names = list(project.label_classes.order_by("id").values_list("name", flat=True))
    doc = write_coco(records, label_names=label_names)
    for entry, extra in zip(doc["images"], attributes):
        entry["attributes"] = extra
    (out / "annotations.json").write_text(json.dumps(doc))
    return {"images": len(images), "polygons": len(doc["annotations"]), "skipped_unlabeled": 0}


def _export_semantic(project: Project, out: Path, progress: Progress) -> dict[str, Any]:
    from annotations.models import LabelClass
    from annotations.services import project_void_index
    from ml.formats.semantic import regions_to_class_mask

    if project.kind != Project.Kind.ROAD_SCENE:
        raise ApplicationError(f"format semantic: class-index label images need a road-scene project, this one is {project.kind!r}")
    void_index = project_void_index(project)
    classes = list(LabelClass.objects.filter(project=project).order_by("index"))
    indices = {c.name: c.index for c in classes}
    (out / "classes.json").write_text(json.dumps({
        "classes": [{"index": c.index, "name": c.name, "color": c.color} for c in classes if c.index != void_index],
        "void_index": void_index,
    }, indent=1))
    images = list(Image.objects.filter(project=project).order_by("id"))
    regions = _regions_by_image(project)
    unique = _UniqueNames()
    for index, image in enumerate(images):
        stem = PurePosixPath(image.original_name).stem or f"image_{image.pk}"
        suffix = PurePosixPath(image.original_name).suffix.lower() or _EXTENSIONS.get(image.content_type, ".png")
        name = unique(f"{image.split}/images/{stem}{suffix}", image.pk)
        label = PurePosixPath(name).parent.parent / "labels" / f"{PurePosixPath(name).stem}.png"
        for path in (out / name, out / str(label)):
            path.parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(_image_bytes(image))
        mask = regions_to_class_mask(regions.get(image.pk, []), indices, image.width, image.height, void_index)
        (out / str(label)).write_bytes(encode_png(mask))
        progress("writing", (index + 1) / max(len(images), 1))
    return {"images": len(images), "classes": len(classes), "skipped_unlabeled": 0}


def _as_png(image: Image) -> bytes:
    data = _image_bytes(image)
    if image.content_type == "image/png":
        return data
    with PILImage.open(io.BytesIO(data)) as pil:
        return encode_png(np.asarray(pil.convert("RGB")))


def _export_mvtec(project: Project, out: Path, progress: Progress) -> dict[str, Any]:
    images = list(Image.objects.filter(project=project).order_by("id"))
    regions = _regions_by_image(project)
    unique = _UniqueNames()
    written: Counter[str] = Counter()
    skipped = 0
    for index, image in enumerate(images):
        progress("writing", (index + 1) / max(len(images), 1))
        if image.state == Image.State.UNLABELED:
            skipped += 1
            continue
        if image.state == Image.State.NORMAL:
            split, kind = ("train" if image.split == Image.Split.TRAIN else "test"), NORMAL_KIND
        else:
            labels = Counter(r.label for r in regions.get(image.pk, []))
            split, kind = "test", (labels.most_common(1)[0][0] if labels else "anomaly")
            if kind == NORMAL_KIND:  # a class literally called "good" must not read as normal
                kind = "good_anomaly"
        try:
            image_path = mvtec_image_path(split, kind, image.original_name)
        except ValueError:
            image_path = mvtec_image_path(split, kind, f"image_{image.pk}")
        image_path = unique(image_path, image.pk)
        (out / image_path).parent.mkdir(parents=True, exist_ok=True)
        (out / image_path).write_bytes(_as_png(image))
        if kind != NORMAL_KIND:
            mask_path = out / mvtec_mask_path(kind, PurePosixPath(image_path).name)
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            mask_path.write_bytes(image_mask_png(image=image)[0])
        written[f"{split}/{kind}"] += 1
    return {"images": sum(written.values()), "by_folder": dict(sorted(written.items())), "skipped_unlabeled": skipped}


def dataset_export(*, project: Project, fmt: str, out: Path, actor=None, progress: Progress = no_progress) -> dict[str, Any]:
    """Write ``project`` in format ``fmt`` into the folder ``out`` (created; must be empty); returns a summary."""
    _check_format(fmt)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ApplicationError(f"{out}: the output folder is not empty")
    progress("writing", 0.0)
    writers = {"coco": _export_coco, "mvtec": _export_mvtec, "semantic": _export_semantic}
    summary = writers[fmt](project, out, progress)
    summary["format"] = fmt
    audit_record(actor, "dataset.export", project, project, summary)
    return summary


def folder_zip(folder: Path) -> bytes:
    """The files under ``folder`` as a zip, in memory (small exports; see :func:`folder_zip_to`)."""
    buffer = io.BytesIO()
    folder_zip_to(folder, buffer)
    return buffer.getvalue()


def folder_zip_to(folder: Path, handle) -> None:
    """Write the files under ``folder`` as a zip into ``handle`` (paths relative to it, sorted
    and with a fixed date, so equal exports give equal archives), one file at a time."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)


def export_job_start(*, project: Project, fmt: str, actor) -> Job:
    _check_format(fmt)
    return job_create(kind=Job.Kind.EXPORT, project=project, requested_by=actor, task_name=EXPORT_TASK,
                      params={"format": fmt})


def export_job_run(ctx: JobContext) -> dict[str, Any]:
    """The work of an export job: the zip becomes the job's ``output_file``."""
    job = ctx.job
    fmt = job.params.get("format", "")
    name = f"{job.project.slug}-{fmt}.zip"
    ctx.plan({"writing": 4, "packing": 1, "storing": 1})
    # The files and the archive go to temporary files on disk and the archive is stored in
    # pieces: an export never sits in memory whole. A full disk fails the job with its reason.
    with tempfile.TemporaryDirectory(prefix="export-") as tmp, tempfile.TemporaryFile(prefix="export-", suffix=".zip") as archive:
        folder = Path(tmp)
        summary = dataset_export(project=job.project, fmt=fmt, out=folder, actor=job.requested_by,
                                 progress=lambda stage, fraction: ctx.progress(stage, fraction))
        ctx.progress("packing", 0.0)
        folder_zip_to(folder, archive)
        archive.flush()
        ctx.progress("storing", 0.0)
        ctx.save_output(File(archive, name=name), name)
    return summary

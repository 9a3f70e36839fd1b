"""Importing datasets into a project: MVTec AD folders, VIA 1.x, COCO and LabelMe.

Parsing is done by the pure readers in :mod:`ml.formats` (shared with the ml
dataset readers); this module finds the files, matches annotations to images,
and saves everything in ONE transaction: an import is saved whole or not at
all, and a malformed file fails it with a message naming the file.

What each format gives (split and state of the created images):

* ``mvtec``: ``train/good`` -> split train, normal; ``test/good`` -> test,
  normal; ``test/<kind>`` -> test, anomalous, with polygons traced from
  ``ground_truth/<kind>/<stem>_mask.png`` (holes kept; label class ``<kind>``).
* ``semantic`` (road-scene projects; CamVid / Cityscapes style): every folder
  ``images/`` with a sibling ``labels/`` (``<stem>.png``, one class index per
  pixel) and a ``classes.json`` (``{"classes": [{"index", "name"}], "void_index"}``)
  in that folder's parent or the dataset root. The classes become label classes
  with those indices (and ``void`` with the void index); polygons are traced per
  class from the label PNGs, holes kept. The split is the nearest split folder.
* ``via``, ``coco``, ``labelme``: every ``.json`` file under the folder is read
  as that format; every image under the folder is imported, annotated or not.
  The split is the nearest folder named ``train``, ``val``/``validation`` or
  ``test`` above the image (else ``unassigned``). Images with polygons are
  anomalous; images without are ``unlabeled`` (an image nobody outlined is
  not known to be normal), unless a COCO file written by our exporter carries
  the state in ``images[].attributes``.

Images whose bytes are already in the project (or repeated in the import) are
not stored twice; they are counted as duplicates and their annotations ignored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image as PILImage

from annotations.services import PolygonInput, annotations_set_imported, label_class_get_or_create, regions_check
from ml.base import no_progress
from ml.formats import (
    AnnotatedImage,
    FormatError,
    Region,
    mask_to_polygons,
    mvtec_layout,
    parse_coco,
    parse_labelme,
    parse_via,
)
from ml.formats.mvtec import IMAGE_EXTENSIONS
from projects import hooks
from projects.audit import audit_record
from projects.errors import ApplicationError, PayloadTooLarge
from projects.jobs import JobContext, job_create
from projects.models import Image, Job, Project
from projects.services import image_create
from projects.uploads import BadFile, CheckedImage, check_image, expand_zip

IMPORT_FORMATS = ("mvtec", "via", "coco", "labelme", "semantic")
IMPORT_TASK = "annotations.import_dataset"
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
Progress = Callable[[str, float], None]


@dataclasses.dataclass
class ImportItem:
    """One image to create: where its bytes are, what the dataset says about it."""

    path: Path
    name: str  # path relative to the dataset root, stored as the image's original name
    split: str
    state: str
    regions: list[Region]
    declared_size: tuple[int, int] | None = None  # (width, height) when the annotation file states it


# --- finding images and annotations -------------------------------------------------

def _check_format(fmt: str) -> None:
    if fmt not in IMPORT_FORMATS:
        raise ApplicationError(f"format: unknown import format {fmt!r}; known: {', '.join(IMPORT_FORMATS)}")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") or part == "__MACOSX" for part in path.relative_to(root).parts)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _split_of(relative: str) -> str:
    for part in reversed(PurePosixPath(relative).parts[:-1]):
        split = SPLIT_FOLDERS.get(part.lower())
        if split:
            return split
    return Image.Split.UNASSIGNED


def dataset_root(folder: Path) -> Path:
    """Descend through a lone wrapping folder (``car_damage_via.zip`` -> ``car_damage_via/``)."""
    folder = Path(folder)
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name.lower() not in SPLIT_FOLDERS:
            folder = entries[0]
            continue
        return folder


def _normal(path: Path) -> Path:
    """``path`` made absolute with ``..`` folded, symlinks left alone (datasets often link their images)."""
    return Path(os.path.normpath(path.absolute()))


def _read_mvtec(root: Path) -> list[ImportItem]:
    items = []
    for record in mvtec_layout(root):
        regions: list[Region] = []
        if record.mask_path is not None:
            mask = _read_mask(record.mask_path, root)
            with PILImage.open(record.path) as probe:
                size = probe.size
            if mask.shape[::-1] != size:
                raise FormatError(
                    f"{_relative(record.mask_path, root)}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                    f"{_relative(record.path, root)} is {size[0]}x{size[1]}"
                )
            # Ground truth is binarised once, mask > 127 (datasets README); holes are kept.
            regions = mask_to_polygons(mask > 127, label=record.kind)
        items.append(ImportItem(record.path, _relative(record.path, root), record.split, record.state, regions))
    return items


def _read_mask(path: Path, root: Path) -> np.ndarray:
    try:
        with PILImage.open(path) as mask:
            return np.asarray(mask.convert("L"))
    except Exception as exc:
        raise FormatError(f"{_relative(path, root)}: unreadable mask ({exc})") from None


def _annotation_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if p.is_file() and _visible(p, root))


def _read_annotated(root: Path, fmt: str) -> list[ImportItem]:
    """VIA, COCO, LabelMe: every image under ``root``, with the regions the json files give it."""
    images = {_normal(p): p for p in sorted(root.rglob("*")) if _is_image(p) and _visible(p, root)}
    annotated: dict[Path, tuple[AnnotatedImage, str, dict[str, Any]]] = {}
    json_files = _annotation_files(root)
    if not json_files:
        raise FormatError(f"no .json annotation file found for format {fmt}")
    for json_path in json_files:
        source = _relative(json_path, root)
        data = json_path.read_bytes()
        if fmt == "via":
            records = [(r, {}) for r in parse_via(data, source=source)]
        elif fmt == "labelme":
            records = [(parse_labelme(data, source=source), {})]
        else:
            records = list(zip(parse_coco(data, source=source), _coco_image_attributes(data)))
        for record, attributes in records:
            where = f"{source}: image {record.file_name!r}"
            # Candidates outside the dataset folder are never looked at, so a name like
            # ../../etc/passwd gets the same answer as a missing file (no file-system oracle).
            path = next((_normal(c) for c in _image_candidates(fmt, json_path, root, record.file_name)
                         if _normal(c).is_relative_to(_normal(root)) and c.is_file()), None)
            if path is None:
                raise FormatError(f"{where} is not in the dataset")
            if path not in images:
                raise FormatError(f"{where} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
            if path in annotated:
                raise FormatError(f"{where} is also annotated in {annotated[path][1]}; annotate each image once")
            annotated[path] = (record, source, attributes)
    items = []
    for resolved, path in images.items():
        name = _relative(path, root)
        record, _source, attributes = annotated.get(resolved, (None, None, {}))
        regions = record.regions if record else []
        split = attributes.get("split") if attributes.get("split") in Image.Split.values else _split_of(name)
        state = attributes.get("state") if attributes.get("state") in Image.State.values else (
            Image.State.ANOMALOUS if regions else Image.State.UNLABELED
        )
        size = (record.width, record.height) if record and record.width and record.height else None
        items.append(ImportItem(path, name, split, state, regions, size))
    return items


def _image_candidates(fmt: str, json_path: Path, root: Path, name: str) -> list[Path]:
    """Where an image named in an annotation file may be, in order of preference."""
    here = json_path.parent
    if fmt == "labelme":  # one file per image, next to it
        return [here / name]
    if fmt == "via":
        return [here / name, root / name]
    return [here / name, root / name, here / "images" / name, root / "images" / name]  # COCO's usual images/ folder


def _coco_image_attributes(data: bytes) -> list[dict[str, Any]]:
    """Split and state our exporter stores per COCO image (``images[i].attributes``), in ``images`` order.

    Not part of the COCO standard, so other tools' files simply lack it; the
    polygons themselves are read by ``ml.formats.parse_coco``.
    """
    import json

    try:
        images = json.loads(data).get("images") or []
    except (ValueError, AttributeError):
        return []
    return [img.get("attributes") if isinstance(img, dict) and isinstance(img.get("attributes"), dict) else {}
            for img in images]


def _semantic_folders(root: Path) -> list[tuple[Path, Path]]:
    """``(images/, labels/)`` folder pairs under ``root``."""
    pairs = [(d, d.parent / "labels") for d in sorted(root.rglob("images"))
             if d.is_dir() and _visible(d, root) and (d.parent / "labels").is_dir()]
    if not pairs:
        raise FormatError("no images/ folder with a labels/ folder beside it")
    return pairs


def semantic_class_list(root: Path):
    """The one class list of a semantic dataset (``classes.json`` files must agree)."""
    from ml.data.semantic import read_class_list

    root = dataset_root(Path(root))
    found = {}
    for images, _labels in _semantic_folders(root):
        for folder in (images.parent, root):
            if (folder / "classes.json").is_file():
                found[_relative(folder / "classes.json", root)] = read_class_list(folder / "classes.json")
                break
        else:
            raise FormatError(f"{_relative(images, root)}: no classes.json beside it or at the dataset root")
    lists = list(found.values())
    if any(other != lists[0] for other in lists[1:]):
        raise FormatError(f"the class lists {', '.join(found)} disagree; give one class list")
    return lists[0]


def _read_semantic(root: Path) -> list[ImportItem]:
    from ml.formats.semantic import class_mask_to_regions

    class_list = semantic_class_list(root)
    items = []
    for images, labels in _semantic_folders(root):
        for path in sorted(p for p in images.iterdir() if _is_image(p)):
            label_path = labels / f"{path.stem}.png"
            name = _relative(path, root)
            if not label_path.is_file():
                raise FormatError(f"{name}: no label image {_relative(label_path, root)}")
            try:
                with PILImage.open(label_path) as label:
                    if label.mode not in ("L", "P"):
                        raise FormatError(f"{_relative(label_path, root)}: a label image has one channel of class "
                                          f"indices (mode L or P), this one is {label.mode}")
                    classes = np.asarray(label)
                with PILImage.open(path) as probe:
                    size = probe.size
            except FormatError:
                raise
            except Exception as exc:
                raise FormatError(f"{_relative(label_path, root)}: unreadable ({exc})") from None
            if classes.shape[::-1] != size:
                raise FormatError(f"{_relative(label_path, root)}: label image is {classes.shape[1]}x{classes.shape[0]} "
                                  f"but its image is {size[0]}x{size[1]}")
            try:
                regions = class_mask_to_regions(classes, class_list.names, class_list.void_index)
            except ValueError as exc:
                raise FormatError(f"{_relative(label_path, root)}: {exc}") from None
            state = Image.State.ANOMALOUS if regions else Image.State.UNLABELED
            items.append(ImportItem(path, name, _split_of(name), state, regions, size))
    return items


def _semantic_classes_create(project: Project, folder: Path, actor) -> None:
    """Label classes of a semantic dataset with the dataset's indices; a clash with the project's
    classes (same name, other index; or same index, other name) refuses the import."""
    from annotations.models import LabelClass, VOID_NAME
    from annotations.services import label_class_create

    if project.kind != Project.Kind.ROAD_SCENE:
        raise ApplicationError(f"format semantic: class-index label images need a road-scene project, this one is {project.kind!r}")
    class_list = semantic_class_list(folder)
    wanted = dict(class_list.names)
    if not any(name.lower() == VOID_NAME for name in wanted.values()):
        wanted[class_list.void_index] = VOID_NAME
    existing = {c.index: c.name for c in LabelClass.objects.filter(project=project)}
    by_name = {name: index for index, name in existing.items()}
    for index, name in sorted(wanted.items()):
        if existing.get(index, name) != name or by_name.get(name, index) != index:
            raise ApplicationError(
                f"class {name!r} has index {index} in the dataset, but the project has "
                + (f"{existing[index]!r} at index {index}" if existing.get(index, name) != name else f"{name!r} at index {by_name[name]}"),
                details={"class": name, "index": index},
            )
        if index not in existing:
            label_class_create(project=project, name=name, index=index, actor=actor)


def dataset_read(folder: Path, fmt: str) -> list[ImportItem]:
    """Everything an import of ``folder`` would create, without touching the database."""
    _check_format(fmt)
    root = dataset_root(Path(folder))
    readers = {"mvtec": _read_mvtec, "semantic": _read_semantic}
    items = readers[fmt](root) if fmt in readers else _read_annotated(root, fmt)
    if not items:
        raise FormatError(f"no images found for format {fmt}")
    return items


# --- saving ---------------------------------------------------------------------------

def dataset_import(
    *, project: Project, folder: Path, fmt: str, actor, progress: Progress = no_progress,
    check_cancelled: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Import the dataset in ``folder`` into ``project``, all or nothing.

    Returns a summary (images created, duplicates, polygons, per split/state
    counts). Malformed files raise ApplicationError naming the file.

    ``progress`` is only called outside the saving transaction: a job's progress
    write inside it would lock the job row until the import commits, and a
    cancel request (an UPDATE of that row) would hang that long. Inside it,
    ``check_cancelled`` (a read) may raise to roll everything back.
    """
    progress("reading", 0.0)
    try:
        items = dataset_read(folder, fmt)
    except FormatError as exc:
        raise ApplicationError(f"malformed {fmt} dataset: {exc}") from None
    checked_images = _check_images(items, progress)
    progress("saving", 0.0)
    created: list[Image] = []
    duplicates: list[str] = []
    polygons = annotated = 0
    counts: Counter[str] = Counter()
    with transaction.atomic():
        if fmt == "semantic":
            _semantic_classes_create(project, folder, actor)
        label_classes: dict[str, Any] = {}
        for index, (item, checked) in enumerate(zip(items, checked_images)):
            if check_cancelled is not None and index % 20 == 0:
                check_cancelled()
            # The bytes are read again rather than kept from the check: a large import
            # would otherwise hold every image in memory; the decode is not repeated.
            data = item.path.read_bytes()
            if hashlib.sha256(data).hexdigest() != checked.sha256:
                raise ApplicationError(f"{item.name}: the file changed while it was being imported")
            image, is_new = image_create(
                project=project, checked=dataclasses.replace(checked, data=data), uploaded_by=actor,
                split=item.split, state=item.state,
            )
            if not is_new:  # same bytes already in the project, or earlier in this import
                duplicates.append(item.name)
                continue
            created.append(image)
            counts[f"{item.split}/{item.state}"] += 1
            if item.regions:
                checked = _checked_regions(project, image, item, label_classes, actor)
                annotations_set_imported(image=image, checked=checked, actor=actor)
                polygons += len(checked)
                annotated += 1
        summary = {
            "format": fmt,
            "images_created": len(created),
            "duplicates": len(duplicates),
            "duplicate_names": duplicates[:50],
            "polygons": polygons,
            "annotated_images": annotated,
            "by_split_state": dict(sorted(counts.items())),
        }
        audit_record(actor, "dataset.import", project, project, summary | {"image_ids": [i.pk for i in created][:1000]})
        image_ids = [i.pk for i in created]
        if image_ids:
            transaction.on_commit(lambda: hooks.emit_images_uploaded(project_id=project.pk, image_ids=image_ids))
    progress("saving", 1.0)
    return summary


def _check_images(items: list[ImportItem], progress: Progress) -> list[CheckedImage]:
    """Decode every image before the transaction opens: live progress for the slow part, and
    one error listing every bad file instead of stopping at the first. Returns what the check
    learnt of each image (size, type, sha256) without its bytes."""
    checked: list[CheckedImage] = []
    bad: list[BadFile] = []
    for index, item in enumerate(items):
        outcome = check_image(item.name, item.path.read_bytes(), max_pixels=settings.MAX_IMAGE_PIXELS)
        if isinstance(outcome, BadFile):
            bad.append(outcome)
        else:
            checked.append(dataclasses.replace(outcome, data=b""))
        progress("checking images", (index + 1) / len(items))
    if bad:
        names = "; ".join(f"{b.name}: {b.error}" for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ApplicationError(f"{len(bad)} bad image(s), nothing was saved: {names}{more}",
                               details={"bad_files": [b.as_dict() for b in bad]})
    return checked


def _checked_regions(project: Project, image: Image, item: ImportItem, label_classes: dict, actor) -> list[PolygonInput]:
    if item.declared_size and item.declared_size != (image.width, image.height):
        raise ApplicationError(
            f"{item.name}: the annotation file says {item.declared_size[0]}x{item.declared_size[1]} "
            f"but the image is {image.width}x{image.height}"
        )
    regions_check(regions=item.regions, where=item.name)
    try:
        record = AnnotatedImage(item.name, image.width, image.height, item.regions).with_size(image.width, image.height)
    except FormatError as exc:
        raise ApplicationError(str(exc)) from None
    checked = []
    for region in record.regions:
        if region.label not in label_classes:
            label_classes[region.label] = label_class_get_or_create(project=project, name=region.label, actor=actor)
        checked.append(PolygonInput(region, label_classes[region.label]))
    return checked


def demo_data_import(*, project: Project, folder: Path, actor) -> dict[str, Any]:
    """The demo's data source (``projects.demo``): an MVTec-layout folder."""
    return dataset_import(project=project, folder=folder, fmt="mvtec", actor=actor)


def demo_rail_import(*, project: Project, actor, seed: int = 0) -> dict[str, Any]:
    """The rail demo's data source (``projects.demo``): 36 normal train scenes (rails drawn on 12
    of them as "rail" polygons), 8 normal and 8 obstacle test scenes (obstacles outlined), 512x256,
    from ``ml.data.rail_synthetic``."""
    from annotations.services import annotations_replace
    from ml.data.rail_synthetic import RAIL_CLASS, generate_rail
    from ml.formats import encode_png, mask_to_polygons
    from projects.services import image_upload

    train, test = generate_rail(36, 0, seed=seed), generate_rail(8, 8, seed=seed + 1)
    from annotations.models import LabelClass

    rail = LabelClass.objects.get(project=project, name=RAIL_CLASS)

    def upload(samples, **kwargs):
        files = [(f"{s.name}.png", encode_png(s.image)) for s in samples]
        return image_upload(project=project, files=files, uploaded_by=actor, **kwargs).created

    train_images = upload(train, split="train", state="normal")
    with_rails = 12
    for image, sample in list(zip(train_images, train))[:with_rails]:
        polygons = [{"outer": r.outer, "label_class": rail.pk} for r in mask_to_polygons(sample.class_masks[RAIL_CLASS])]
        annotations_replace(image=image, polygons=polygons, expected_version=0, actor=actor)
    upload([s for s in test if s.label == 0], split="test", state="normal")
    obstacles = [s for s in test if s.label == 1]
    for image, sample in zip(upload(obstacles, split="test", state="anomalous"), obstacles):
        annotations_replace(image=image, polygons=[{"outer": r.outer} for r in mask_to_polygons(sample.mask)], expected_version=0, actor=actor)
    return {"images": project.images.count(), "with_rails": with_rails}


# --- archives and jobs ---------------------------------------------------------------

def archive_unpack(data: bytes, folder: Path, *, name: str = "archive.zip") -> None:
    """Write a zip's files under ``folder``; unsafe names ('../x', absolute) refuse the whole archive."""
    entries, bad = expand_zip(name, data, max_total_bytes=settings.MAX_UPLOAD_BYTES)
    if bad:
        problems = "; ".join(f"{b.name}: {b.error}" for b in bad[:5])
        raise ApplicationError(f"archive refused: {problems}", details={"bad_files": [b.as_dict() for b in bad]})
    prefix = f"{name}/"
    for label, content in entries:
        target = folder / label[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def import_job_start(*, project: Project, archive_name: str, archive: bytes, fmt: str, actor) -> Job:
    """Check what can be checked at once (format, size, a readable zip with safe names; 400/413),
    then queue an import job on the ``default`` queue."""
    _check_format(fmt)
    if fmt == "semantic" and project.kind != Project.Kind.ROAD_SCENE:
        raise ApplicationError(f"format semantic: class-index label images need a road-scene project, this one is {project.kind!r}",
                               details={"key": "format"})
    if len(archive) > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"archive is {len(archive)} bytes, over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}")
    _entries, bad = expand_zip(archive_name or "archive.zip", archive, max_total_bytes=settings.MAX_UPLOAD_BYTES)
    if bad:
        problems = "; ".join(f"{b.name}: {b.error}" for b in bad[:5])
        raise ApplicationError(f"archive refused: {problems}", details={"bad_files": [b.as_dict() for b in bad]})
    return job_create(
        kind=Job.Kind.IMPORT, project=project, requested_by=actor, task_name=IMPORT_TASK,
        params={"format": fmt, "archive_name": archive_name}, input_file=archive, input_name="import.zip",
    )


def import_job_run(ctx: JobContext) -> dict[str, Any]:
    """The work of an import job (called through ``projects.jobs.run_job`` by the Celery task)."""
    job = ctx.job
    with job.input_file.open("rb") as fh:
        data = fh.read()
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        # Saving happens in one transaction without progress reports: it gets its share up front.
        ctx.plan({"unpacking": 1, "reading": 1, "checking images": 6, "saving": 4})
        ctx.progress("unpacking", 0.0)
        archive_unpack(data, Path(tmp))
        return dataset_import(
            project=job.project, folder=Path(tmp), fmt=job.params.get("format", ""), actor=job.requested_by,
            progress=lambda stage, fraction: ctx.progress(stage, fraction), check_cancelled=ctx.check_cancelled,
        )


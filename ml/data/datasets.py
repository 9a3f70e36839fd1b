"""Dataset readers: sequences of :class:`ml.base.Sample`, loaded lazily.

Only paths (and parsed polygons) are held; each ``dataset[i]`` reads the image
from disk. Images are (H, W, 3) uint8 RGB, masks (H, W) uint8 0/255 (see
:mod:`ml.data.io`). ``resize`` (an int or (height, width)) resizes images
(area / bilinear) and masks (nearest) as they are read, as the benchmark
protocols ask; None keeps the native size.

Labels: 1 anomalous, 0 normal (with an all-zero mask), None unknown (an image
nobody annotated: it is not known to be free of anomalies).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator, Literal, Sequence, overload

import numpy as np

from ml.base import Sample
from ml.data.io import read_image, read_mask, resize_image, resize_mask
from ml.formats import FormatError, Region, mvtec_layout, parse_coco, parse_labelme, parse_via, rasterize
from ml.formats.mvtec import is_image_file

Size = int | tuple[int, int] | None


@dataclasses.dataclass(frozen=True)
class Item:
    """What is known about one image before it is read."""

    image_path: Path
    name: str
    label: int | None
    mask_path: Path | None = None
    regions: tuple[Region, ...] | None = None  # rasterised at the image's size when read
    class_mask_paths: tuple[tuple[str, Path], ...] = ()  # (label class, mask file), e.g. rail masks


class SampleFolder(Sequence[Sample]):
    """A lazy sequence of samples built from :class:`Item` rows."""

    def __init__(self, items: Sequence[Item], resize: Size = None):
        self.items = list(items)
        self.resize = resize

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> "SampleFolder": ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return SampleFolder(self.items[index], self.resize)
        return self._load(self.items[index])

    def __iter__(self) -> Iterator[Sample]:
        for item in self.items:
            yield self._load(item)

    @property
    def labels(self) -> list[int | None]:
        """Labels without reading any image."""
        return [item.label for item in self.items]

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    def subset(self, label: int | None) -> "SampleFolder":
        """Only the samples with this label (e.g. ``subset(0)``: the normal images)."""
        return SampleFolder([i for i in self.items if i.label == label], self.resize)

    def _load(self, item: Item) -> Sample:
        image = read_image(item.image_path)
        height, width = image.shape[:2]
        if item.mask_path is not None:
            mask = read_mask(item.mask_path)
            if mask.shape != (height, width):
                raise FormatError(f"{item.mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, image is {width}x{height}")
        elif item.regions is not None:
            mask = rasterize(item.regions, width, height)
        elif item.label == 0:
            mask = np.zeros((height, width), np.uint8)
        else:
            mask = None
        class_masks = {name: read_mask(path) for name, path in item.class_mask_paths} or None
        if self.resize is not None:
            image = resize_image(image, self.resize)
            mask = None if mask is None else resize_mask(mask, image.shape[:2])
            class_masks = None if class_masks is None else {k: resize_mask(v, image.shape[:2]) for k, v in class_masks.items()}
        return Sample(image=image, mask=mask, label=item.label, name=item.name, class_masks=class_masks)


class ConcatSamples(Sequence[Sample]):
    """Several datasets read one after the other (e.g. normal train images plus annotated defects)."""

    def __init__(self, parts: Sequence[Sequence[Sample]]):
        self.parts = list(parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if index < 0:
            index += len(self)
        for part in self.parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError("sample index out of range")

    def __iter__(self) -> Iterator[Sample]:
        for part in self.parts:
            yield from part

    @property
    def labels(self) -> list[int | None]:
        return [label for p in self.parts for label in _labels(p)]


def _labels(samples: Sequence[Sample]) -> list[int | None]:
    labels = getattr(samples, "labels", None)
    return list(labels) if labels is not None else [s.label for s in samples]


def MVTecDataset(root: str | Path, split: Literal["train", "test"] = "train", resize: Size = None) -> SampleFolder:
    """One split of an MVTec AD layout folder; normal images get an all-zero mask."""
    root = Path(root)
    records = [r for r in mvtec_layout(root) if r.split == split]
    if not records:
        raise FormatError(f"{root}: no images under {split}/")
    items = [
        Item(r.path, r.path.relative_to(root).as_posix(), 0 if r.state == "normal" else 1, r.mask_path, class_mask_paths=_class_masks(root, r.path))
        for r in records
    ]
    return SampleFolder(items, resize)


def _class_masks(root: Path, image_path: Path) -> tuple[tuple[str, Path], ...]:
    """Masks of named label classes (not anomalies) beside an MVTec layout:
    ``<root>/class_masks/<class>/<image path relative to root>`` (written by the rail generator)."""
    base = root / "class_masks"
    if not base.is_dir():
        return ()
    relative = image_path.relative_to(root)
    found = []
    for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        candidate = (class_dir / relative).with_suffix(".png")
        if candidate.is_file():
            found.append((class_dir.name, candidate))
    return tuple(found)


def ImageMaskDataset(
    root: str | Path, images: str = "images", masks: str = "masks", resize: Size = None
) -> SampleFolder:
    """``<root>/images/<stem>.*`` paired with ``<root>/masks/<stem>.*`` (or ``<stem>_mask.*``).

    An image whose mask is empty is normal (label 0), otherwise anomalous; an
    image without a mask file is unlabeled.
    """
    root = Path(root)
    image_dir, mask_dir = root / images, root / masks
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise FormatError(f"{root}: expected the folders {images}/ and {masks}/")
    mask_files = {p.stem: p for p in sorted(mask_dir.iterdir()) if is_image_file(p)}
    items = []
    for path in sorted(p for p in image_dir.iterdir() if is_image_file(p)):
        mask_path = mask_files.get(path.stem) or mask_files.get(f"{path.stem}_mask")
        label = None if mask_path is None else int(read_mask(mask_path).any())
        items.append(Item(path, path.relative_to(root).as_posix(), label, mask_path))
    if not items:
        raise FormatError(f"{image_dir}: no images")
    return SampleFolder(items, resize)


def ImageMaskList(pairs: Sequence[tuple[str | Path, str | Path | None]], resize: Size = None) -> SampleFolder:
    """Explicit ``(image path, mask path or None)`` pairs; labels as in :func:`ImageMaskDataset`."""
    items = []
    for image_path, mask_path in pairs:
        image_path = Path(image_path)
        if not image_path.is_file():
            raise FormatError(f"{image_path}: no such image")
        if mask_path is not None and not Path(mask_path).is_file():
            raise FormatError(f"{mask_path}: no such mask")
        label = None if mask_path is None else int(read_mask(mask_path).any())
        items.append(Item(image_path, image_path.name, label, None if mask_path is None else Path(mask_path)))
    return SampleFolder(items, resize)


def PolygonDataset(
    folder: str | Path,
    annotations: str | Path | None = None,
    unannotated: Literal["unlabeled", "normal", "skip"] = "unlabeled",
    resize: Size = None,
) -> SampleFolder:
    """Images of ``folder`` with polygon annotations (VIA 1.x, COCO or LabelMe), rasterised to masks.

    ``annotations``: one VIA or COCO file; by default ``folder`` is searched for
    a ``*.json`` in either format, else LabelMe files (one per image). All
    regions of an image form one anomaly mask. An image listed in the
    annotations with no region is normal; an image the annotations do not
    mention is ``unannotated``: unlabeled (kept, label None, no mask), normal,
    or skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: not a folder")
    records = read_polygon_annotations(folder, annotations)
    by_name = {r.file_name: r for r in records}
    items = []
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        record = by_name.pop(path.name, None)
        if record is None:
            if unannotated == "skip":
                continue
            label = 0 if unannotated == "normal" else None
            items.append(Item(path, path.name, label))
        else:
            items.append(Item(path, path.name, 1 if record.regions else 0, None, tuple(record.regions)))
    if by_name:
        missing = ", ".join(sorted(by_name)[:5])
        raise FormatError(f"{folder}: annotations name images that are not in the folder: {missing}")
    return SampleFolder(items, resize)


def read_polygon_annotations(folder: Path, annotations: str | Path | None = None):
    """Parse the polygon file(s) describing the images of ``folder``; the format is recognised from the content."""
    files = [Path(annotations)] if annotations is not None else sorted(folder.glob("*.json"))
    if not files:
        raise FormatError(f"{folder}: no annotation file (*.json: VIA, COCO or LabelMe)")
    records = []
    labelme = []
    for path in files:
        try:
            doc = json.loads(path.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path.name}: not valid JSON ({exc})") from None
        if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
            records += parse_coco(doc, source=path.name)
        elif isinstance(doc, dict) and "shapes" in doc and "imagePath" in doc:
            labelme.append(parse_labelme(doc, source=path.name))
        elif isinstance(doc, dict):
            records += parse_via(doc, source=path.name)
        else:
            raise FormatError(f"{path.name}: not a VIA, COCO or LabelMe file")
    return records + labelme


def open_dataset(path: str | Path, split: Literal["train", "test"] | None = None, resize: Size = None) -> SampleFolder:
    """Recognise a folder's layout: MVTec AD (``split`` required), images/ + masks/, or images with polygon files."""
    path = Path(path)
    if not path.is_dir():
        raise FormatError(f"{path}: not a folder")
    if (path / "train" / "good").is_dir() or (path / "test").is_dir():
        return MVTecDataset(path, split or "test", resize)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return ImageMaskDataset(path, resize=resize)
    if any(path.glob("*.json")):
        return PolygonDataset(path, resize=resize)
    raise FormatError(
        f"{path}: layout not recognised (expected MVTec AD train/ test/ ground_truth/, images/ + masks/, "
        "or images with a VIA, COCO or LabelMe file)"
    )

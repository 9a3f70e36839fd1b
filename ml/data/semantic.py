"""Semantic (road-scene) datasets: images with class-index label PNGs and a class list.

Layout (CamVid / Cityscapes style, as ``../shared/datasets/camvid``)::

    <root>/images/<stem>.jpg|png
    <root>/labels/<stem>.png        class index per pixel (uint8), void_index where unlabelled
    <root>/classes.json             {"classes": [{"index": 0, "name": "Sky"}, ...], "void_index": 11}

Samples carry ``classes`` (H, W) uint8; ``mask`` / ``label`` are filled when
``anomalous_classes`` are given (the open-set protocol's unknown objects).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image as PILImage

from ml.base import Sample
from ml.data.io import read_image
from ml.formats import FormatError
from ml.formats.mvtec import is_image_file


@dataclasses.dataclass(frozen=True)
class ClassList:
    names: dict[int, str]
    void_index: int

    @property
    def num_classes(self) -> int:
        return max(self.names) + 1 if self.names else 0

    def index_of(self, name: str) -> int:
        for index, known in self.names.items():
            if known.lower() == name.lower():
                return index
        raise FormatError(f"no class named {name!r}; classes are {', '.join(self.names.values())}")


def read_class_list(path: str | Path) -> ClassList:
    """Parse ``classes.json``; a clear FormatError names what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable JSON class list ({exc})") from None
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"{path}: expected {{\"classes\": [{{\"index\": 0, \"name\": ...}}, ...]}}")
    names: dict[int, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int) or not isinstance(entry.get("name"), str):
            raise FormatError(f"{path}: class {i} needs an integer 'index' and a string 'name'")
        if not 0 <= entry["index"] < 255 or entry["index"] in names:
            raise FormatError(f"{path}: class index {entry['index']} is out of 0..254 or repeated")
        names[entry["index"]] = entry["name"]
    void = data.get("void_index", 255)
    if not isinstance(void, int) or void in names or not 0 <= void <= 255:
        raise FormatError(f"{path}: void_index must be an integer 0..255 that is not a class index")
    return ClassList(names, void)


class SemanticFolder(Sequence[Sample]):
    """Lazy samples of a semantic folder; ``anomalous_classes`` mark pixels as anomalies in ``mask``."""

    def __init__(self, root: str | Path, anomalous_classes: Sequence[int] = (), limit: int | None = None):
        self.root = Path(root)
        self.class_list = read_class_list(self.root / "classes.json")
        image_dir, label_dir = self.root / "images", self.root / "labels"
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise FormatError(f"{self.root}: expected the folders images/ and labels/")
        labels = {p.stem: p for p in label_dir.iterdir() if is_image_file(p)}
        self.pairs = [(p, labels.get(p.stem)) for p in sorted(image_dir.iterdir()) if is_image_file(p)]
        missing = [p.name for p, label in self.pairs if label is None]
        if missing:
            raise FormatError(f"{label_dir}: no label PNG for {missing[0]} ({len(missing)} images without one)")
        if limit is not None:
            self.pairs = self.pairs[:limit]
        self.anomalous = list(anomalous_classes)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            out = SemanticFolder.__new__(SemanticFolder)
            out.root, out.class_list, out.pairs, out.anomalous = self.root, self.class_list, self.pairs[index], self.anomalous
            return out
        image_path, label_path = self.pairs[index]
        image = read_image(image_path)
        classes = np.asarray(PILImage.open(label_path))
        if classes.ndim != 2 or classes.shape != image.shape[:2]:
            raise FormatError(f"{label_path}: expected a single-channel label image of {image.shape[:2]}, got {classes.shape}")
        classes = classes.astype(np.uint8)
        anomalous = np.isin(classes, self.anomalous) if self.anomalous else np.zeros(classes.shape, bool)
        return Sample(image, anomalous.astype(np.uint8) * 255, int(anomalous.any()), image_path.name, classes)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

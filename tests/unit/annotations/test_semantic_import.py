"""CamVid-style import/export of road scenes: class-index label PNGs + classes.json, and COCO with
several categories; the round trip gives the class masks back.

Tolerance: polygons are traced from the label PNGs (boundary pixels included, holes kept) and
rasterised back; the tracer may lose a few pixels along diagonal one-pixel necks, so at most
0.5% of an image's pixels may change class in a round trip (measured: 0 on these scenes and on
the CamVid files of tests/integration/test_import_real_datasets.py)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations import selectors
from annotations.exporters import dataset_export
from annotations.importers import dataset_import
from annotations.models import LabelClass
from ml.data.scenes import generate_scenes
from ml.formats import encode_png
from projects.errors import ApplicationError
from projects.models import Image, Project

pytestmark = pytest.mark.django_db

TOLERANCE = 0.005
NAMES = {0: "sky", 1: "building", 2: "road", 3: "object"}


def class_masks(project) -> dict[str, np.ndarray]:
    """Class-index mask per image, keyed by image content."""
    out = {}
    for image in Image.objects.filter(project=project):
        data = selectors.image_class_mask_png(image=image)
        out[image.sha256] = np.asarray(PILImage.open(io.BytesIO(data))) if data else None
    return out


def assert_same_classes(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert (a != b).mean() <= TOLERANCE, f"{(a != b).sum()} pixels changed class"


def write_semantic(folder: Path, samples_by_split: dict, void: int = 255) -> dict[str, np.ndarray]:
    """A CamVid-layout folder; returns the written label image per file name."""
    (folder).mkdir(parents=True, exist_ok=True)
    (folder / "classes.json").write_text(json.dumps(
        {"classes": [{"index": i, "name": n} for i, n in NAMES.items()], "void_index": void}))
    written = {}
    for split, samples in samples_by_split.items():
        for sub in ("images", "labels"):
            (folder / split / sub).mkdir(parents=True, exist_ok=True)
        for s in samples:
            (folder / split / "images" / f"{s.name}.png").write_bytes(encode_png(s.image))
            (folder / split / "labels" / f"{s.name}.png").write_bytes(encode_png(s.classes))
            written[s.name] = s.classes
    return written


@pytest.fixture
def road(project):
    project.kind = Project.Kind.ROAD_SCENE
    project.save(update_fields=["kind"])
    return project


@pytest.fixture
def road2(other_project):
    other_project.kind = Project.Kind.ROAD_SCENE
    other_project.save(update_fields=["kind"])
    return other_project


def test_semantic_import_export_reimport_keeps_the_class_masks(road, road2, alice, tmp_path):
    scenes = generate_scenes(4, seed=3)
    written = write_semantic(tmp_path / "in", {"train": scenes[:3], "val": scenes[3:]})

    summary = dataset_import(project=road, folder=tmp_path / "in", fmt="semantic", actor=alice)

    assert summary["images_created"] == 4 and summary["by_split_state"]["train/anomalous"] == 3
    assert {(c.name, c.index) for c in LabelClass.objects.filter(project=road)} == {*((n, i) for i, n in NAMES.items()), ("void", 255)}
    imported = {Image.objects.get(pk=i.pk).original_name: i for i in Image.objects.filter(project=road)}
    for name, image in imported.items():
        stem = Path(name).stem
        data = selectors.image_class_mask_png(image=image)
        assert_same_classes(np.asarray(PILImage.open(io.BytesIO(data))), written[stem])
    assert Image.objects.get(project=road, original_name="val/images/scene_0003.png").split == "val"

    dataset_export(project=road, fmt="semantic", out=tmp_path / "out", actor=alice)
    exported = json.loads((tmp_path / "out" / "classes.json").read_text())
    assert exported["void_index"] == 255 and [c["name"] for c in exported["classes"]] == list(NAMES.values())
    for stem, classes in written.items():
        label = next((tmp_path / "out").glob(f"*/labels/{stem}.png"))
        assert_same_classes(np.asarray(PILImage.open(label)), classes)

    dataset_import(project=road2, folder=tmp_path / "out", fmt="semantic", actor=alice)
    first, second = class_masks(road), class_masks(road2)
    assert first.keys() == second.keys()
    for key in first:
        assert_same_classes(second[key], first[key])


def test_semantic_import_needs_a_road_scene_project(project, alice, tmp_path):
    write_semantic(tmp_path / "in", {"train": generate_scenes(1)})
    with pytest.raises(ApplicationError, match="road-scene"):
        dataset_import(project=project, folder=tmp_path / "in", fmt="semantic", actor=alice)
    assert not Image.objects.filter(project=project).exists()


def test_a_class_index_clash_refuses_the_whole_import(road, alice, tmp_path):
    LabelClass.objects.create(project=road, name="road", index=0)
    write_semantic(tmp_path / "in", {"train": generate_scenes(2)})
    with pytest.raises(ApplicationError, match="'sky' has index 0 in the dataset, but the project has 'road'"):
        dataset_import(project=road, folder=tmp_path / "in", fmt="semantic", actor=alice)
    assert not Image.objects.filter(project=road).exists()
    assert list(LabelClass.objects.filter(project=road).values_list("name", flat=True)) == ["road"]


def test_a_label_value_outside_the_class_list_is_named(road, alice, tmp_path):
    scene = generate_scenes(1)[0]
    scene.classes[10, 10] = 42
    write_semantic(tmp_path / "in", {"train": [scene]})
    with pytest.raises(ApplicationError, match="pixel value 42"):
        dataset_import(project=road, folder=tmp_path / "in", fmt="semantic", actor=alice)


def test_coco_with_several_categories_gives_a_class_mask_per_category(road, alice, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(encode_png(np.zeros((40, 40, 3), np.uint8)))
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 40}],
        "categories": [{"id": 1, "name": "road"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 20, 39, 20, 39, 39, 0, 39]], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[5, 25, 15, 25, 15, 35, 5, 35]], "iscrowd": 0},
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc))

    dataset_import(project=road, folder=tmp_path, fmt="coco", actor=alice)

    classes = {c.name: c.index for c in LabelClass.objects.filter(project=road)}
    mask = list(class_masks(road).values())[0]
    assert mask[30, 30] == classes["road"] and mask[30, 10] == classes["car"] and mask[5, 5] == 255

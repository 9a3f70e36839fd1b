"""Imports of the shared real datasets (../shared/datasets or $DATASETS_DIR; skipped when absent)."""
from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations import selectors
from annotations.exporters import dataset_export
from annotations.importers import dataset_import
from annotations.models import Annotation
from projects.models import Image, Project

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def real_dataset(name: str) -> Path:
    base = Path(os.environ.get("DATASETS_DIR") or REPO_ROOT.parent / "shared" / "datasets")
    if not (base / name).is_dir():
        pytest.skip(f"real dataset {name!r} not found under {base} (set DATASETS_DIR)")
    return base / name


def _mask(image: Image) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(selectors.image_mask_png(image=image)[0])))


def _snapshot(project: Project) -> dict[str, tuple]:
    """Per image (by content): split, state, polygons with class, mask bytes."""
    rows = {}
    for image in Image.objects.filter(project=project):
        polygons = [(a.label_class.name, a.polygon) for a in Annotation.objects.filter(annotation_set__image=image)]
        rows[image.sha256] = (image.split, image.state, polygons, _mask(image).tobytes())
    return rows


def test_mpdd_metal_plate_imports_with_its_splits_and_masks(project, other_project, alice, tmp_path):
    summary = dataset_import(project=project, folder=real_dataset("mpdd_metal_plate"), fmt="mvtec", actor=alice)

    counts = Counter(Image.objects.filter(project=project).values_list("split", "state"))
    assert counts == {("train", "normal"): 54, ("test", "normal"): 26, ("test", "anomalous"): 21}
    assert summary["images_created"] == 101 and summary["annotated_images"] == 21
    defective = Image.objects.filter(project=project, state="anomalous")
    assert sum(1 for image in defective if _mask(image).any()) == 21
    # The traced polygons give the ground-truth masks back (up to a few pixels on one-pixel necks).
    for image in defective[:5]:
        stem = Path(image.original_name).stem
        truth = np.asarray(PILImage.open(real_dataset("mpdd_metal_plate") / f"ground_truth/defective/{stem}_mask.png")) > 127
        assert np.count_nonzero((_mask(image) > 0) != truth) <= max(10, truth.sum() // 100)

    dataset_export(project=project, fmt="coco", out=tmp_path / "coco")
    dataset_import(project=other_project, folder=tmp_path / "coco", fmt="coco", actor=alice)
    assert _snapshot(other_project) == _snapshot(project)


def test_car_damage_via_imports_75_images_61_annotated_117_polygons_and_round_trips_through_coco(
    project, other_project, alice, tmp_path
):
    summary = dataset_import(project=project, folder=real_dataset("car_damage_via"), fmt="via", actor=alice)

    assert summary["images_created"] == 75
    assert Image.objects.filter(project=project).count() == 75
    assert Image.objects.filter(project=project, annotation_set__annotations__isnull=False).distinct().count() == 61
    assert Annotation.objects.filter(annotation_set__image__project=project).count() == 117
    assert Counter(Image.objects.filter(project=project).values_list("split", flat=True)) == {"train": 63, "val": 12}
    assert Image.objects.filter(project=project, state="unlabeled").count() == 14  # not known to be damage-free

    dataset_export(project=project, fmt="coco", out=tmp_path / "coco")
    dataset_import(project=other_project, folder=tmp_path / "coco", fmt="coco", actor=alice)
    assert _snapshot(other_project) == _snapshot(project)


def test_camvid_files_round_trip_through_semantic_import_and_export(project, other_project, alice, tmp_path):
    """A few CamVid scenes: import -> export -> re-import gives the same class masks, at most 0.5% of
    pixels changed by the polygon tracing (tests/unit/annotations/test_semantic_import.py)."""
    import shutil

    camvid = real_dataset("camvid")
    folder = tmp_path / "camvid"
    for split, n in (("train", 2), ("val", 1)):
        for sub in ("images", "labels"):
            (folder / split / sub).mkdir(parents=True)
        for image in sorted((camvid / split / "images").iterdir())[:n]:
            shutil.copy(image, folder / split / "images" / image.name)
            shutil.copy(camvid / split / "labels" / f"{image.stem}.png", folder / split / "labels")
    shutil.copy(camvid / "classes.json", folder / "classes.json")
    originals = {p.stem: np.asarray(PILImage.open(p)) for p in folder.glob("*/labels/*.png")}
    for p in (project, other_project):
        p.kind = Project.Kind.ROAD_SCENE
        p.save(update_fields=["kind"])

    dataset_import(project=project, folder=folder, fmt="semantic", actor=alice)
    dataset_export(project=project, fmt="semantic", out=tmp_path / "out", actor=alice)
    dataset_import(project=other_project, folder=tmp_path / "out", fmt="semantic", actor=alice)

    assert Image.objects.filter(project=other_project).count() == 3
    for image in Image.objects.filter(project=other_project):
        classes = np.asarray(PILImage.open(io.BytesIO(selectors.image_class_mask_png(image=image))))
        original = originals[Path(image.original_name).stem]
        assert classes.shape == original.shape == (360, 480)
        assert (classes != original).mean() <= 0.005

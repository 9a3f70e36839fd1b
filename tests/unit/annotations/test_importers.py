"""Imports and exports on tiny generated datasets: MVTec, VIA, COCO, LabelMe; all or nothing; round trips."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations import selectors
from annotations.exporters import dataset_export, folder_zip
from annotations.importers import archive_unpack, dataset_import
from annotations.models import Annotation, LabelClass
from projects.errors import ApplicationError
from projects.models import AuditEvent, Image
from tests.factories import make_png, make_zip

pytestmark = pytest.mark.django_db


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _png_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _ring_mask(size: int = 64) -> np.ndarray:
    """A filled square with a square hole: traced into one polygon with one hole."""
    mask = np.zeros((size, size), np.uint8)
    mask[10:50, 10:50] = 255
    mask[22:38, 22:38] = 0
    return mask


def _mask_of(image) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(selectors.image_mask_png(image=image)[0])))


@pytest.fixture
def mvtec_folder(tmp_path):
    root = tmp_path / "plates"
    for i in range(3):
        _write(root / "train/good" / f"{i:03d}.png", make_png(seed=i))
    _write(root / "test/good/000.png", make_png(seed=10))
    _write(root / "test/scratch/000.png", make_png(seed=20))
    _write(root / "ground_truth/scratch/000_mask.png", _png_of(_ring_mask()))
    return root


def test_mvtec_folders_give_split_state_and_polygons_with_holes(project, alice, mvtec_folder):
    summary = dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)

    assert summary["images_created"] == 5 and summary["polygons"] == 1 and summary["annotated_images"] == 1
    assert summary["by_split_state"] == {"test/anomalous": 1, "test/normal": 1, "train/normal": 3}
    defect = Image.objects.get(project=project, original_name="test/scratch/000.png")
    assert (defect.split, defect.state) == ("test", "anomalous")
    annotation = Annotation.objects.get(annotation_set__image=defect)
    assert annotation.label_class.name == "scratch" and annotation.source == Annotation.Source.IMPORT
    assert len(annotation.polygon["holes"]) == 1
    mask = _mask_of(defect)
    assert np.array_equal(mask > 0, _ring_mask() > 0)  # the hole stays a hole
    assert AuditEvent.objects.filter(verb="dataset.import", actor=alice, project=project).exists()


def test_the_same_import_twice_stores_nothing_new(project, alice, mvtec_folder):
    dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    again = dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    assert again["images_created"] == 0 and again["duplicates"] == 5
    assert Image.objects.filter(project=project).count() == 5


@pytest.fixture
def via_folder(tmp_path):
    root = tmp_path / "cars"
    _write(root / "train/a.png", make_png(seed=31))
    _write(root / "train/b.png", make_png(seed=32))  # no regions: stays unlabeled
    _write(root / "val/c.png", make_png(seed=33))
    regions = {"0": {"shape_attributes": {"name": "polygon", "all_points_x": [5, 30, 30, 5], "all_points_y": [5, 5, 30, 30]},
                     "region_attributes": {"Front": "damage"}}}
    (root / "train/via_region_data.json").write_text(json.dumps(
        {"a.png123": {"filename": "a.png", "size": 123, "regions": regions, "file_attributes": {}}}))
    (root / "val/via_region_data.json").write_text(json.dumps(
        {"c.png9": {"filename": "c.png", "size": 9, "regions": [regions["0"], regions["0"]], "file_attributes": {}}}))
    return root


def test_via_folders_map_to_splits_and_unannotated_images_stay_unlabeled(project, alice, via_folder):
    summary = dataset_import(project=project, folder=via_folder, fmt="via", actor=alice)

    assert summary["images_created"] == 3 and summary["annotated_images"] == 2 and summary["polygons"] == 3
    states = {i.original_name: (i.split, i.state) for i in Image.objects.filter(project=project)}
    assert states == {"train/a.png": ("train", "anomalous"), "train/b.png": ("train", "unlabeled"),
                      "val/c.png": ("val", "anomalous")}
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["damage"]


def test_a_zip_with_a_wrapping_folder_imports_like_the_folder(project, alice, via_folder, tmp_path):
    archive = tmp_path / "cars.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in via_folder.rglob("*"):
            if path.is_file():
                zf.write(path, "cars/" + path.relative_to(via_folder).as_posix())
    unpacked = tmp_path / "unpacked"
    archive_unpack(archive.read_bytes(), unpacked)
    assert dataset_import(project=project, folder=unpacked, fmt="via", actor=alice)["images_created"] == 3


def test_labelme_files_next_to_their_images(project, alice, tmp_path):
    root = tmp_path / "lm"
    _write(root / "test/x.png", make_png(seed=4))
    (root / "test/x.json").write_text(json.dumps({
        "imagePath": "x.png", "imageWidth": 64, "imageHeight": 64,
        "shapes": [{"label": "crack", "points": [[1, 1], [20, 1], [20, 20]], "shape_type": "polygon"},
                   {"label": "crack", "points": [[30, 30], [40, 40]], "shape_type": "rectangle"}],
    }))
    summary = dataset_import(project=project, folder=root, fmt="labelme", actor=alice)
    assert summary["polygons"] == 2
    image = Image.objects.get(project=project)
    assert (image.split, image.state) == ("test", "anomalous")
    assert _mask_of(image)[35, 35] == 255


@pytest.mark.parametrize(
    "fmt, files, words",
    [
        ("via", {"train/via_region_data.json": b"{not json"}, "train/via_region_data.json"),
        ("via", {"via.json": json.dumps({"k": {"filename": "missing.png", "regions": []}}).encode()}, "missing.png"),
        ("via", {"via.json": json.dumps({"k": {"filename": "a.png", "regions": [
            {"shape_attributes": {"name": "polygon", "all_points_x": [1, 2], "all_points_y": [1, 2]}}]}}).encode()},
         "at least 3"),
        ("via", {"via.json": json.dumps({"k": {"filename": "a.png", "regions": [
            {"shape_attributes": {"name": "polygon", "all_points_x": [1, 200, 5], "all_points_y": [1, 2, 9]}}]}}).encode()},
         "outside the image"),
        ("via", {"via.json": json.dumps({"k": {"filename": "../../etc/passwd", "regions": []}}).encode()}, "passwd"),
        ("coco", {"coco.json": json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 99, "height": 64}],
                                           "annotations": [{"id": 1, "image_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]}],
                                           "categories": []}).encode()}, "99x64"),
        ("coco", {"coco.json": b"[]"}, "coco.json"),
        ("labelme", {}, "no .json"),
        ("mvtec", {}, "MVTec"),
    ],
)
def test_malformed_imports_fail_naming_the_problem_and_save_nothing(project, alice, tmp_path, fmt, files, words):
    root = tmp_path / "bad"
    _write(root / "a.png", make_png(seed=5))
    _write(root / "b.png", make_png(seed=6))
    for name, data in files.items():
        _write(root / name, data)
    with pytest.raises(ApplicationError) as caught:
        dataset_import(project=project, folder=root, fmt=fmt, actor=alice)
    assert words in caught.value.message
    assert not Image.objects.filter(project=project).exists()
    assert not LabelClass.objects.filter(project=project).exists()


def test_a_name_outside_the_dataset_and_a_missing_one_get_the_same_message(project, alice, tmp_path):
    """No file-system oracle: whether ../outside.png exists must not change the answer."""
    (tmp_path / "outside.png").write_bytes(make_png(seed=9))
    messages = []
    for name in ("../outside.png", "../absent.png"):
        root = tmp_path / f"ds-{len(messages)}"
        _write(root / "a.png", make_png(seed=5))
        coco = {"images": [{"id": 1, "file_name": name, "width": 64, "height": 64}], "annotations": [], "categories": []}
        _write(root / "coco.json", json.dumps(coco).encode())
        with pytest.raises(ApplicationError) as caught:
            dataset_import(project=project, folder=root, fmt="coco", actor=alice)
        messages.append(caught.value.message.replace(name, "<name>"))
    assert messages[0] == messages[1] and "is not in the dataset" in messages[0]


def test_a_corrupt_image_fails_the_whole_import(project, alice, mvtec_folder):
    _write(mvtec_folder / "train/good/zzz.png", b"\x89PNG\r\n\x1a\n but not really")
    with pytest.raises(ApplicationError, match="zzz.png"):
        dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    assert not Image.objects.filter(project=project).exists()


def test_path_traversal_in_an_archive_refuses_it(tmp_path):
    archive = make_zip({"ok/a.png": make_png(), "../evil.png": make_png(seed=1)})
    with pytest.raises(ApplicationError, match="path traversal"):
        archive_unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()


def test_coco_export_then_import_gives_identical_polygons_masks_splits_and_states(
    project, other_project, alice, mvtec_folder, via_folder, tmp_path
):
    dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    dataset_import(project=project, folder=via_folder, fmt="via", actor=alice)
    out = tmp_path / "coco"
    summary = dataset_export(project=project, fmt="coco", out=out)
    assert summary["images"] == 8 and summary["polygons"] == 4 and (out / "annotations.json").is_file()

    dataset_import(project=other_project, folder=out, fmt="coco", actor=alice)

    def snapshot(p):
        rows = {}
        for image in Image.objects.filter(project=p):
            polygons = [(a.label_class.name, a.polygon) for a in Annotation.objects.filter(annotation_set__image=image)]
            rows[image.sha256] = (image.split, image.state, polygons, _mask_of(image).tobytes())
        return rows

    assert snapshot(other_project) == snapshot(project)


def test_mvtec_export_writes_the_layout_and_leaves_unlabeled_images_out(
    project, other_project, alice, mvtec_folder, via_folder, tmp_path
):
    dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    dataset_import(project=project, folder=via_folder, fmt="via", actor=alice)
    out = tmp_path / "mvtec"
    summary = dataset_export(project=project, fmt="mvtec", out=out)

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "ground_truth/damage/a_mask.png", "ground_truth/damage/c_mask.png", "ground_truth/scratch/000_mask.png",
        "test/damage/a.png", "test/damage/c.png", "test/good/000.png", "test/scratch/000.png",
        "train/good/000.png", "train/good/001.png", "train/good/002.png",
    ]
    assert summary["skipped_unlabeled"] == 1
    exported = np.asarray(PILImage.open(out / "ground_truth/scratch/000_mask.png"))
    assert np.array_equal(exported > 0, _ring_mask() > 0)
    assert zipfile.ZipFile(io.BytesIO(folder_zip(out))).namelist() == files

    back = dataset_import(project=other_project, folder=out, fmt="mvtec", actor=alice)
    assert back["by_split_state"] == {"test/anomalous": 3, "test/normal": 1, "train/normal": 3}
    assert back["polygons"] == 3  # c.png's two identical polygons are one region in a mask


def test_a_cancelled_import_rolls_everything_back(project, alice, mvtec_folder):
    from projects.jobs import JobCancelled

    stages = []

    def cancel():
        raise JobCancelled("cancelled on request")

    with pytest.raises(JobCancelled):
        dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice,
                       progress=lambda stage, fraction: stages.append(stage), check_cancelled=cancel)
    assert not Image.objects.filter(project=project).exists()
    assert stages[0] == "reading" and "checking images" in stages and stages[-1] == "saving"


def test_every_bad_image_is_listed(project, alice, mvtec_folder):
    _write(mvtec_folder / "train/good/bad1.png", b"not an image")
    _write(mvtec_folder / "test/good/bad2.png", b"")
    with pytest.raises(ApplicationError) as caught:
        dataset_import(project=project, folder=mvtec_folder, fmt="mvtec", actor=alice)
    assert caught.value.message.startswith("2 bad image(s), nothing was saved")
    assert {b["file"] for b in caught.value.details["bad_files"]} == {"train/good/bad1.png", "test/good/bad2.png"}

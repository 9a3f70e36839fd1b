"""ml.data: dataset readers, presets and the synthetic generator."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data import ConcatSamples, ImageMaskDataset, ImageMaskList, MVTecDataset, PolygonDataset, binarize_mask, open_dataset
from ml.data.synthetic import generate, write_synthetic_mvtec
from ml.data.transforms import normalize, prepare, resize, resize_masks, to_tensor
from ml.formats import FormatError
from tests.unit.ml._datasets import dataset


def test_synthetic_is_deterministic_and_masks_are_exact():
    a = generate(2, 3, size=64, seed=7)
    b = generate(2, 3, size=64, seed=7)
    assert all(x.image.tobytes() == y.image.tobytes() and x.mask.tobytes() == y.mask.tobytes() for x, y in zip(a, b))
    assert generate(1, 0, size=64, seed=8)[0].image.tobytes() != a[0].image.tobytes()
    assert [s.name for s in a] == ["good_0000", "good_0001", "scratch_0000", "spot_0001", "crack_0002"]
    assert [s.label for s in a] == [0, 0, 1, 1, 1]
    for s in a:
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert s.mask.shape == (64, 64) and set(np.unique(s.mask)) <= {0, 255}
        assert s.mask.any() == bool(s.label)
    for kind in ("woven", "grain"):
        assert generate(0, 1, size=32, kind=kind)[0].mask.any()
    with pytest.raises(ValueError, match="unknown surface"):
        generate(1, 0, kind="marble")


def test_synthetic_defects_stand_out_from_normal_texture():
    normal, anomalous = generate(1, 3, size=128, seed=1)[0], generate(0, 3, size=128, seed=1)
    for s in anomalous:
        inside = s.image[s.mask > 0].astype(float).mean(axis=0)
        outside = s.image[s.mask == 0].astype(float).mean(axis=0)
        assert np.abs(inside - outside).max() > 25, s.name
    assert normal.image.std() > 3  # a texture, not a flat colour


def test_mvtec_dataset_reads_lazily_with_labels_masks_and_resize(tmp_path):
    write_synthetic_mvtec(tmp_path, n_train=3, n_test_normal=2, n_test_anomalous=3, size=48, seed=0)
    train = MVTecDataset(tmp_path, "train")
    test = MVTecDataset(tmp_path, "test", resize=32)
    assert len(train) == 3 and train.labels == [0, 0, 0]
    assert sorted(test.labels) == [0, 0, 1, 1, 1]
    sample = test[test.labels.index(1)]
    assert sample.image.shape == (32, 32, 3) and sample.mask.shape == (32, 32) and sample.mask.any()
    assert sample.name.startswith("test/") and sample.name.endswith(".png")
    normal = test.subset(0)[0]
    assert normal.mask is not None and not normal.mask.any()
    assert len(open_dataset(tmp_path, "train")) == 3
    # the written images are the generated ones
    generated = generate(3, 0, size=48, seed=0)
    assert np.array_equal(train[0].image, generated[0].image)


def test_image_mask_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 3:6] = 255
    for stem, m in (("a", mask), ("b", np.zeros_like(mask))):
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / "images" / f"{stem}.jpg")
        Image.fromarray(m).save(tmp_path / "masks" / f"{stem}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "c.png")
    data = open_dataset(tmp_path)
    assert data.names == ["images/a.jpg", "images/b.jpg", "images/c.png"]
    assert data.labels == [1, 0, None]
    assert np.array_equal(data[0].mask, mask) and data[2].mask is None
    pairs = ImageMaskList([(tmp_path / "images" / "b.jpg", tmp_path / "masks" / "a.png"), (tmp_path / "images" / "c.png", None)])
    assert pairs.labels == [1, None] and pairs[0].mask.any()
    with pytest.raises(FormatError, match="no such image"):
        ImageMaskList([(tmp_path / "nope.png", None)])


def test_polygon_folder_rasterises_regions_and_keeps_unannotated_images_unlabeled(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / name)
    via = {
        "a.png1": {"filename": "a.png", "regions": [{"shape_attributes": {"name": "rect", "x": 2, "y": 3, "width": 4, "height": 5}}]},
        "b.png1": {"filename": "b.png", "regions": []},
    }
    (tmp_path / "via_region_data.json").write_text(json.dumps(via))
    data = PolygonDataset(tmp_path)
    assert data.labels == [1, 0, None]
    mask = data[0].mask
    assert mask.shape == (20, 30) and (mask > 0).sum() == 5 * 6 and mask[3, 2] == 255
    assert not data[1].mask.any() and data[2].mask is None
    assert PolygonDataset(tmp_path, unannotated="skip").names == ["a.png", "b.png"]
    (tmp_path / "via_region_data.json").write_text(json.dumps({**via, "z1": {"filename": "zz.png", "regions": []}}))
    with pytest.raises(FormatError, match="not in the folder: zz.png"):
        PolygonDataset(tmp_path)


def test_binarize_mask_scales_once():
    assert binarize_mask(np.array([[0, 1]], np.uint8)).tolist() == [[0, 255]]
    assert binarize_mask(np.array([[127, 128]], np.uint8)).tolist() == [[0, 255]]
    assert binarize_mask(np.array([[0.4, 0.6]])).tolist() == [[0, 255]]
    assert binarize_mask(np.array([[False, True]])).tolist() == [[0, 255]]


def test_presets():
    images = [np.full((4, 6, 3), 255, np.uint8), np.zeros((4, 6, 3), np.uint8)]
    x = to_tensor(images)
    assert x.shape == (2, 3, 4, 6) and x.dtype == torch.float32 and x.max() == 1.0
    assert torch.allclose(normalize(x, "efficientnet_lite")[0], torch.full((3, 4, 6), 1.0))
    assert torch.allclose(normalize(x, "efficientnet_lite")[1], torch.full((3, 4, 6), -127 / 128))
    assert normalize(x, "imagenet")[1, 0, 0, 0].item() == pytest.approx(-0.485 / 0.229)
    assert resize(x, 8).shape == (2, 3, 8, 8)
    assert prepare(images, (2, 3), "unit").shape == (2, 3, 2, 3)
    assert set(resize_masks(torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]]), 5).unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(x, "vgg")


def test_real_sets_read():
    mpdd = MVTecDataset(dataset("mpdd_metal_plate"), "test", resize=64)
    assert len(mpdd) == 47 and mpdd.labels.count(1) == 21
    defective = ImageMaskDataset(dataset("mpdd_metal_plate_defective_train"))
    assert len(defective) == 60 and set(defective.labels) == {1}
    cars = PolygonDataset(dataset("car_damage_via") / "train", resize=(72, 128))
    assert len(cars) == 63 and cars.labels.count(1) == 49 and cars.labels.count(None) == 14
    first = cars[cars.labels.index(1)]
    assert first.image.shape == (72, 128, 3) and first.mask.any()
    both = ConcatSamples([mpdd.subset(0), defective])
    assert len(both) == 26 + 60 and both.labels.count(1) == 60

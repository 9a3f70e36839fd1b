"""The synthetic rail-scene generator (issue 13): determinism, masks that match what is drawn, speed."""
from __future__ import annotations

import time

import cv2
import numpy as np

from ml.data import open_dataset
from ml.data.rail_synthetic import generate_rail, write_synthetic_rail


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])


def test_same_arguments_give_identical_scenes_and_more_samples_do_not_change_earlier_ones():
    a = generate_rail(3, 3, width=256, height=128, seed=5)
    b = generate_rail(4, 4, width=256, height=128, seed=5)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.class_masks["rail"], y.class_masks["rail"])
    np.testing.assert_array_equal(a[3].image, b[4].image)  # first anomalous scene
    np.testing.assert_array_equal(a[3].mask, b[4].mask)
    other = generate_rail(3, 0, width=256, height=128, seed=6)
    assert not np.array_equal(a[0].image, other[0].image)


def test_labels_names_shapes_and_binary_masks():
    samples = generate_rail(2, 2, width=256, height=128, seed=0)
    assert [s.label for s in samples] == [0, 0, 1, 1]
    assert [s.name for s in samples] == ["good_0000", "good_0001", "obstacle_0000", "obstacle_0001"]
    for s in samples:
        assert s.image.shape == (128, 256, 3) and s.image.dtype == np.uint8
        for mask in (s.mask, s.class_masks["rail"]):
            assert mask.shape == (128, 256) and set(np.unique(mask)) <= {0, 255}
        assert (s.mask > 0).any() == (s.label == 1)


def test_rail_mask_pixels_lie_on_the_drawn_rails():
    """Rails are bright strips: each mask pixel is brighter than the ground right beside the rail,
    the mask forms thin strips (a few rails per row, none above the horizon) reaching the bottom row."""
    for s in generate_rail(12, 4, width=512, height=256, seed=3):
        rail = s.class_masks["rail"] > 0
        assert rail.sum() > 200, s.name
        lum = _luminance(s.image)
        beside = cv2.dilate(rail.astype(np.uint8), np.ones((1, 9), np.uint8)).astype(bool) & ~rail
        beside &= ~(s.mask > 0)
        assert lum[rail].mean() > lum[beside].mean() + 10, s.name
        rows = np.flatnonzero(rail.any(axis=1))
        assert rows.min() > 0.25 * 256  # below the horizon (at 0.30..0.42 of the height)
        assert rows.max() == 255  # rails reach the camera
        # Thin strips: every row crosses at most 8 rails (two tracks + a switch), each a few pixels wide.
        runs = np.diff(rail.astype(np.int8), axis=1)
        assert ((runs == 1).sum(axis=1) <= 8).all()
        assert rail.sum(axis=1).max() <= 8 * 12


def test_obstacle_masks_are_inside_the_image_and_overlap_the_rail_corridor():
    """Every obstacle stands on the track: its mask meets the corridor between the outermost rail
    pixels of its rows (taken from the rail mask), and it is painted where its mask is."""
    for s in generate_rail(0, 16, width=512, height=256, seed=11):
        obstacle = s.mask > 0
        assert 8 <= obstacle.sum() < 0.1 * obstacle.size, s.name
        rail = s.class_masks["rail"] > 0
        corridor = np.zeros_like(rail)
        for y in np.flatnonzero(rail.any(axis=1)):
            xs = np.flatnonzero(rail[y])
            corridor[y, xs.min() : xs.max() + 1] = True
        corridor = cv2.dilate(corridor.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert (obstacle & corridor).any(), s.name
        # The rail mask never claims a pixel hidden by an obstacle.
        assert not (obstacle & rail).any()


def test_hundreds_of_scenes_in_seconds():
    started = time.perf_counter()
    generate_rail(50, 50, width=512, height=256, seed=0)
    assert time.perf_counter() - started < 30  # ~50 ms each on one shared core


def test_written_layout_reads_back_with_rail_masks(tmp_path):
    root = write_synthetic_rail(tmp_path / "rail", n_train=3, n_test_normal=1, n_test_anomalous=2, width=128, height=64, seed=2)
    train = open_dataset(root, split="train")
    test = open_dataset(root, split="test")
    assert len(train) == 3 and len(test) == 3
    expected = generate_rail(3, 0, width=128, height=64, seed=2)
    for sample, original in zip(train, expected):
        np.testing.assert_array_equal(sample.image, original.image)
        np.testing.assert_array_equal(sample.class_masks["rail"], original.class_masks["rail"])
    assert sorted(s.label for s in test) == [0, 1, 1]
    assert all("rail" in s.class_masks for s in test)

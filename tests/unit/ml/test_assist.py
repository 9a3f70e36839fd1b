"""Labelling aids: brush / eraser strokes on polygons, GrabCut seeded by a box
(and an anomaly map), superpixels snapping a click to the edges around it."""
from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from ml.assist import (
    AssistError,
    Box,
    Labelled,
    Stroke,
    add_mask,
    grabcut_box,
    grabcut_seed,
    paint,
    pixel_area,
    superpixel_labels,
    superpixel_mask,
)
from ml.formats.common import Region

W, H = 320, 180


def _square(x0, y0, x1, y1, label="a"):
    return Labelled(Region(outer=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), label)


def test_a_brush_dab_paints_a_disc_of_its_radius():
    out = paint([], [Stroke([(100.0, 90.0)], 30.0)], "a", W, H)
    assert len(out) == 1 and out[0].label == "a"
    area = pixel_area([out[0].region], W, H)
    assert abs(area - math.pi * 30**2) / (math.pi * 30**2) < 0.02


def test_brushing_across_a_polygon_of_the_same_class_merges_and_leaves_others_alone():
    other = _square(250, 20, 300, 60, "b")
    far = _square(10, 120, 40, 160, "a")
    items = [_square(50, 50, 100, 100), other, far]
    out = paint(items, [Stroke([(100.0, 75.0), (160.0, 75.0)], 10.0)], "a", W, H)
    assert other in out and far in out  # untouched: same object, same vertices
    merged = [it for it in out if it not in (other, far)]
    assert len(merged) == 1
    assert pixel_area([merged[0].region], W, H) > 51 * 51 + 50 * 20


def test_the_eraser_cuts_a_hole_and_splits_a_polygon():
    items = [_square(20, 20, 200, 160)]
    holed = paint(items, [Stroke([(110.0, 90.0)], 15.0, erase=True)], "a", W, H)
    assert len(holed) == 1 and len(holed[0].region.holes) == 1
    before = pixel_area([items[0].region], W, H)
    after = pixel_area([holed[0].region], W, H)
    assert abs((before - after) - math.pi * 15**2) / (math.pi * 15**2) < 0.1
    split = paint(items, [Stroke([(110.0, 0.0), (110.0, 179.0)], 6.0, erase=True)], "b", W, H)
    assert len(split) == 2  # the eraser works on every class, not only the selected one


def test_bad_strokes_are_refused_with_a_reason():
    with pytest.raises(AssistError, match="radius"):
        paint([], [Stroke([(1.0, 1.0)], 0.0)], "a", W, H)
    with pytest.raises(AssistError, match="at least one point"):
        paint([], [Stroke([], 5.0)], "a", W, H)
    with pytest.raises(AssistError, match="finite"):
        paint([], [Stroke([(float("nan"), 1.0)], 5.0)], "a", W, H)


def test_grabcut_seed_from_box_alone():
    seed = grabcut_seed((40, 60), Box(10, 5, 50, 30))
    assert (seed[5:30, 10:50] == cv2.GC_PR_FGD).all()
    outside = np.ones((40, 60), bool)
    outside[5:30, 10:50] = False
    assert (seed[outside] == cv2.GC_BGD).all()


def test_grabcut_seed_uses_the_heatmap_inside_the_box_only():
    heat = np.zeros((40, 60), np.float32)
    heat[10:20, 20:30] = 0.9  # hot spot
    heat[10:20, 30:35] = 0.6  # warm rim
    heat[0:3, 0:3] = 1.0  # hot but outside the box: stays background
    seed = grabcut_seed((40, 60), Box(10, 5, 50, 30), heat)
    assert (seed[10:20, 20:30] == cv2.GC_FGD).all()
    assert (seed[10:20, 30:35] == cv2.GC_PR_FGD).all()
    assert seed[25, 12] == cv2.GC_PR_BGD  # cold, inside the box
    assert (seed[0:3, 0:3] == cv2.GC_BGD).all()
    # A map with nothing hot in the box says nothing: the box alone decides.
    cold = grabcut_seed((40, 60), Box(10, 5, 50, 30), np.zeros((40, 60), np.float32))
    assert np.array_equal(cold, grabcut_seed((40, 60), Box(10, 5, 50, 30)))


def _scene(width=640, height=360, seed=0):
    """Textured grey background with a dark ellipse and a dark square."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(190, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    ellipse = np.zeros((height, width), np.uint8)
    cv2.ellipse(ellipse, (200, 180), (70, 45), 20, 0, 360, 255, -1)
    square = np.zeros((height, width), np.uint8)
    square[150:210, 300:360] = 255
    for m, colour in ((ellipse, (60, 40, 140)), (square, (50, 120, 60))):
        image[m > 0] = np.clip(rng.normal(colour, 10, (int((m > 0).sum()), 3)), 0, 255).astype(np.uint8)
    return image, ellipse, square


def _iou(a, b):
    a, b = a > 0, b > 0
    return (a & b).sum() / max(1, (a | b).sum())


def test_grabcut_finds_the_object_in_a_box_quickly_even_when_downscaled():
    image, ellipse, _ = _scene()
    started = time.perf_counter()
    mask, x0, y0 = grabcut_box(image, Box(110, 115, 290, 245))
    seconds = time.perf_counter() - started
    full = np.zeros(ellipse.shape, np.uint8)
    full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
    assert _iou(full, ellipse) > 0.9
    assert seconds < 1.0
    # A large box is worked on at most GRABCUT_MAX_SIDE pixels and still answers in well under a second.
    big_image = cv2.resize(image, (1280 * 2, 720 * 2), interpolation=cv2.INTER_LINEAR)
    big = cv2.resize(ellipse, (1280 * 2, 720 * 2), interpolation=cv2.INTER_NEAREST)
    started = time.perf_counter()
    mask, x0, y0 = grabcut_box(big_image, Box(440, 460, 1160, 980))
    assert time.perf_counter() - started < 1.0
    full = np.zeros(big.shape, np.uint8)
    full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
    assert _iou(full, big) > 0.85


def test_the_heatmap_picks_the_anomalous_object_when_the_box_holds_two():
    image, ellipse, square = _scene()
    box = Box(120, 120, 380, 240)
    heat = np.zeros(ellipse.shape, np.float32)
    heat[square > 0] = 0.95  # the model says: the square is the anomaly
    with_heat, x0, y0 = grabcut_box(image, box, heat)
    full = np.zeros(ellipse.shape, np.uint8)
    full[y0 : y0 + with_heat.shape[0], x0 : x0 + with_heat.shape[1]] = with_heat
    assert _iou(full, square) > 0.8
    assert (full[ellipse > 0] > 0).mean() < 0.2


def test_grabcut_refuses_a_degenerate_box():
    image, _, _ = _scene()
    with pytest.raises(AssistError, match="3 x 3"):
        grabcut_box(image, Box(700, 10, 720, 30))


def test_a_superpixel_click_snaps_to_the_object_edge():
    image, _, square = _scene()
    labels = superpixel_labels(image, max_side=320, segments=300)
    mask, x0, y0 = superpixel_mask(labels, 330, 180, image.shape[1], image.shape[0])
    full = np.zeros(square.shape, np.uint8)
    full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
    inside = (full > 0) & (square > 0)
    assert inside.sum() > 0.8 * (full > 0).sum()  # the superpixel stays on the square
    items = add_mask([], mask, x0, y0, "a", image.shape[1], image.shape[0])
    assert len(items) == 1
    assert abs(pixel_area([items[0].region], image.shape[1], image.shape[0]) - (full > 0).sum()) <= 0.02 * (full > 0).sum() + 4
    with pytest.raises(AssistError, match="outside"):
        superpixel_mask(labels, 900, 10, image.shape[1], image.shape[0])

"""Stage 2 of the rail pipeline on hand-drawn rail masks: DBSCAN splits rails, pieces across a gap
are joined, a switch gives two rails, short rails are extended to the region of interest, and the
patches follow eq. 3 (rail-two-stage-anomaly.txt III-B, III-C)."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from ml.pipelines.rail.centrelines import Rail, Stage2Settings, patch_centres, patch_sides, patches_from_rails, rails_from_mask

H, W = 256, 512
ROI_TOP = 128  # Stage2Settings().roi_top = 0.5


def _mask(*polylines, thickness=3, erase_rows=None) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    for points in polylines:
        cv2.polylines(mask, [np.asarray(points, np.int32)], False, 1, thickness)
    if erase_rows is not None:
        mask[erase_rows[0] : erase_rows[1]] = 0
    return mask.astype(bool)


def _x_at(rail: Rail, row: float) -> float:
    near = rail.points[np.argmin(np.abs(rail.points[:, 1] - row))]
    assert abs(near[1] - row) <= 1.5, f"rail does not reach row {row}"
    return float(near[0])


def test_two_rails_are_told_apart_and_ordered_from_the_camera():
    rails = rails_from_mask(_mask([(200, 255), (250, 100)], [(320, 255), (270, 100)]))
    assert len(rails) == 2
    bottoms = sorted(_x_at(r, 254) for r in rails)
    assert bottoms == pytest.approx([200, 320], abs=3)
    for rail in rails:
        assert rail.points[0, 1] > rail.points[-1, 1]  # near end first
        assert rail.points[:, 1].min() <= ROI_TOP + 1  # reaches the top of the region of interest
        assert rail.points[:, 1].min() >= ROI_TOP - 1  # and nothing above it


def test_pieces_across_a_gap_are_joined_into_one_rail_each():
    mask = _mask([(200, 255), (250, 100)], [(320, 255), (270, 100)], erase_rows=(170, 200))
    rails = rails_from_mask(mask)
    assert len(rails) == 2
    for rail, expected in zip(sorted(rails, key=lambda r: _x_at(r, 254)), (200, 320)):
        assert _x_at(rail, 254) == pytest.approx(expected, abs=3)
        # The far piece is part of the same rail: it covers rows above the gap.
        assert rail.points[:, 1].min() <= 140


def test_a_rail_an_obstacle_cuts_into_two_short_pieces_is_joined_and_kept():
    """At a working height of 128 an obstacle on a rail can leave a piece of 7 rows below it and one of
    7 rows beyond it: each alone is too short to be a rail, joined they are one (and it gets patches)."""
    mask = np.zeros((128, 256), np.uint8)
    cv2.polylines(mask, [np.array([(100, 127), (124, 64)], np.int32)], False, 1, 2)
    mask[71:121] = 0  # the obstacle hides the rail between rows 71 and 120
    settings = Stage2Settings(min_rail_points=10)
    rails = rails_from_mask(mask.astype(bool), settings)
    assert len(rails) == 1
    assert rails[0].points[:, 1].max() == pytest.approx(127, abs=1)
    assert rails[0].points[:, 1].min() == pytest.approx(64, abs=1)
    patches = patches_from_rails(rails, dataclasses.replace(settings, patch_max=10, patch_min=7, patch_step=1))
    covered = [p for p in patches if 71 <= p.y <= 120]
    assert covered, "the patches run along the hidden stretch, where the obstacle stands"


def test_gap_too_wide_sideways_is_not_joined():
    """Two pieces far apart horizontally are different rails even when one ends where the other begins."""
    rails = rails_from_mask(_mask([(100, 255), (110, 180)], [(300, 170), (310, 130)]), Stage2Settings(min_rail_points=10))
    assert len(rails) == 2


def test_a_switch_gives_two_rails():
    straight = [(300, 255), (300, 130)]
    branch = [(300, 225), (320, 190), (350, 160), (385, 130)]
    rails = rails_from_mask(_mask(straight, branch))
    assert len(rails) == 2
    tops = sorted(float(r.points[np.argmin(r.points[:, 1]), 0]) for r in rails)
    assert tops[0] == pytest.approx(300, abs=4)
    assert tops[1] > 370


def test_a_short_rail_is_extended_to_the_roi_border_by_its_end_slopes():
    rails = rails_from_mask(_mask([(240, 230), (260, 150)], thickness=2))
    assert len(rails) == 1
    rail = rails[0]
    assert rail.points[:, 1].max() == pytest.approx(255, abs=1)
    assert rail.points[:, 1].min() == pytest.approx(ROI_TOP, abs=1)
    # Slope -0.25 px per row: 25 rows further down the x is about 6 px smaller.
    assert _x_at(rail, 255) == pytest.approx(240 - 25 * 0.25, abs=2)
    assert _x_at(rail, ROI_TOP) == pytest.approx(260 + 22 * 0.25, abs=2)


def test_empty_mask_gives_no_rails_and_no_patches():
    assert rails_from_mask(np.zeros((H, W), bool)) == []
    assert patches_from_rails([]) == []


def test_patch_sides_follow_eq_3():
    """20 px for the first four patches, 2 px smaller every four patches, never below 14."""
    assert patch_sides(14) == [20] * 4 + [18] * 4 + [16] * 4 + [14] * 2
    assert patch_sides(40)[-1] == 14
    assert patch_sides(6, patch_max=12, patch_min=8, step=2, shrink_every=2) == [12, 12, 10, 10, 8, 8]


def test_patch_centres_are_adjacent_squares_along_the_rail():
    """Eq. 3, C_p = (l/2, p*l - l/2) in rail coordinates: square p starts where square p-1 ends."""
    ys = np.arange(255, 99, -1, dtype=np.float64)
    rail = Rail(np.stack([np.full_like(ys, 100.0), ys], axis=1))
    centres = patch_centres(rail, patch_sides(32))
    sides = [c[2] for c in centres]
    assert sides == [20, 20, 20, 20, 18, 18, 18, 18]  # 152 px of a 155 px rail; a ninth (16 px) would not fit
    assert centres[0][1] == pytest.approx(255 - 10)
    for (x0, y0, s0), (x1, y1, s1) in zip(centres, centres[1:]):
        assert x1 == pytest.approx(100)
        assert y0 - y1 == pytest.approx((s0 + s1) / 2)  # adjacent, not overlapping
    assert 255 - centres[-1][1] + centres[-1][2] / 2 <= 155  # no patch runs past the rail's end


def test_patch_boxes_lie_inside_the_image():
    rails = rails_from_mask(_mask([(2, 255), (60, 130)], [(505, 255), (450, 130)]))
    patches = patches_from_rails(rails)
    assert patches
    for patch in patches:
        x0, y0, x1, y1 = patch.box(W, H)
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and x1 - x0 == patch.side


def test_between_rail_patches_fill_the_track_of_two_rails_only():
    """Patches of the rail's size cover the track between two neighbouring rails (sleepers), not
    the ground between tracks farther apart than a gauge."""
    rails = rails_from_mask(_mask([(200, 255), (250, 130)], [(320, 255), (270, 130)]))
    patches = patches_from_rails(rails)
    between = [p for p in patches if p.between]
    assert between and len(patches) > len(between)
    for p in between:
        left = 200 + (255 - p.y) * 50 / 125
        right = 320 - (255 - p.y) * 50 / 125
        assert left + p.side / 2 <= p.x <= right - p.side / 2 + 1
    far_apart = rails_from_mask(_mask([(20, 255), (30, 130)], [(480, 255), (470, 130)]))
    assert not [p for p in patches_from_rails(far_apart) if p.between]
    assert not [p for p in patches_from_rails(rails, Stage2Settings(between_rails=False)) if p.between]


def test_overlapping_patches_put_an_object_on_the_border_of_two_whole_into_one():
    """With ``patch_overlap`` a patch of the nearer one's side sits halfway between each two neighbours,
    on the rail and between the rails at its row; an object straddling two adjacent patches lies inside it."""
    rails = rails_from_mask(_mask([(200, 255), (250, 130)], [(320, 255), (270, 130)]))
    adjacent = patches_from_rails(rails, Stage2Settings(patch_overlap=False))
    overlapping = patches_from_rails(rails, Stage2Settings(patch_overlap=True))
    assert not any(p.half_step for p in adjacent)
    assert {p for p in overlapping if not p.half_step} == set(adjacent)
    on_rail = sorted((p for p in adjacent if p.rail == 0 and not p.between), key=lambda p: p.index)
    halves = sorted((p for p in overlapping if p.rail == 0 and p.half_step and not p.between), key=lambda p: p.index)
    assert len(halves) == len(on_rail) - 1
    for first, second, half in zip(on_rail, on_rail[1:], halves):
        assert (half.x, half.y) == pytest.approx(((first.x + second.x) / 2, (first.y + second.y) / 2))
        assert half.side == first.side
    assert any(p.half_step and p.between for p in overlapping)  # the track between the rails too
    # A 6 px object centred on the border of the second and third patches of rail 0 (the first is
    # shifted up to stay inside the image): cut in two by the adjacent patches, whole in the halfway one.
    first, second = on_rail[1], on_rail[2]
    cx, cy = (first.x + second.x) / 2, (first.y + second.y) / 2
    obj = (cx - 3, cy - 3, cx + 3, cy + 3)

    def contains(p):
        x0, y0, x1, y1 = p.box(W, H)
        return x0 <= obj[0] and y0 <= obj[1] and obj[2] <= x1 and obj[3] <= y1

    assert not any(contains(p) for p in adjacent)
    assert any(contains(p) for p in overlapping)


def test_patches_at_the_far_end_stay_inside_the_region_of_interest():
    """A rail extended to the region of interest's border ends in a square that would reach above it (the
    sky, the horizon); it is moved down to lie inside, as squares at the image's edges are kept inside."""
    rails = rails_from_mask(_mask([(200, 255), (250, 100)], [(320, 255), (270, 100)]))
    unbounded = patches_from_rails(rails)
    assert min(p.box(W, H)[1] for p in unbounded) < ROI_TOP
    bounded = patches_from_rails(rails, top=ROI_TOP)
    assert len(bounded) == len(unbounded)
    assert min(p.box(W, H)[1] for p in bounded) == ROI_TOP

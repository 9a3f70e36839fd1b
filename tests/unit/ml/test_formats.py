"""ml.formats: the polygon readers shared by the dataset readers and the importers."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ml.formats import (
    AnnotatedImage,
    FormatError,
    Region,
    mask_to_polygons,
    mvtec_layout,
    parse_coco,
    parse_labelme,
    parse_via,
    rasterize,
    validate_polygon,
    write_coco,
    write_mvtec_sample,
)
from tests.unit.ml._datasets import dataset

SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
HOLE = [[20, 20], [30, 20], [30, 30], [20, 30]]


def via_entry(name, regions):
    return {f"{name}123": {"filename": name, "size": 123, "regions": regions, "file_attributes": {}}}


def via_polygon(ring, attrs=None):
    return {
        "shape_attributes": {"name": "polygon", "all_points_x": [p[0] for p in ring], "all_points_y": [p[1] for p in ring]},
        "region_attributes": attrs or {},
    }


# --- VIA ---------------------------------------------------------------------------

def test_via_reads_regions_as_list_or_dict_and_labels_from_attributes():
    doc = {
        **via_entry("a.png", [via_polygon(SQUARE + [SQUARE[0]], {"Front": "damage"})]),
        **via_entry("b.png", {"1": via_polygon(HOLE, {"label": "scratch", "note": "x"}), "0": via_polygon(SQUARE)}),
        **via_entry("c.png", []),
    }
    images = parse_via(json.dumps(doc).encode())
    assert [i.file_name for i in images] == ["a.png", "b.png", "c.png"]
    a, b, c = images
    assert a.regions[0].outer == SQUARE  # closing vertex dropped
    assert a.regions[0].label == "damage"
    assert [r.label for r in b.regions] == ["anomaly", "scratch"]  # dict keys in index order
    assert c.regions == [] and a.width is None


def test_via_rect_and_ellipse_become_polygons_and_points_are_refused():
    doc = via_entry("a.png", [
        {"shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4}, "region_attributes": {}},
        {"shape_attributes": {"name": "ellipse", "cx": 20, "cy": 20, "rx": 5, "ry": 3}, "region_attributes": {}},
    ])
    rect, ellipse = parse_via(doc)[0].regions
    assert rect.outer == [[1, 2], [4, 2], [4, 6], [1, 6]]
    assert len(ellipse.outer) == 32 and max(p[0] for p in ellipse.outer) == pytest.approx(25)
    with pytest.raises(FormatError, match=r"a.png region 0: shape 'point' outlines no area"):
        parse_via(via_entry("a.png", [{"shape_attributes": {"name": "point", "cx": 1, "cy": 1}}]))


@pytest.mark.parametrize(
    "doc, message",
    [
        (b"{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"k": {"regions": []}}, "missing 'filename'"),
        (via_entry("a.png", [{"region_attributes": {}}]), "a.png region 0: missing 'shape_attributes'"),
        (via_entry("a.png", [{"shape_attributes": {"name": "polygon", "all_points_x": [1, 2]}}]), "lacks 'all_points_y'"),
        (via_entry("a.png", [via_polygon([[1, 1], [2, 2]])]), "at least 3 distinct points"),
        (via_entry("a.png", [via_polygon([[1, 1], [2, "x"], [3, 1]])]), "point 1 has a non-numeric coordinate"),
        (via_entry("a.png", [via_polygon([[1, 1], [2, float("nan")], [3, 1]])]), "non-finite"),
    ],
)
def test_via_malformed_input_is_a_format_error_naming_the_problem(doc, message):
    with pytest.raises(FormatError, match=message):
        parse_via(doc)


def test_bounds_are_checked_once_the_image_size_is_known():
    image = parse_via(via_entry("a.png", [via_polygon([[-0.5, 0], [64.4, 0], [30, 63]])]))[0]
    sized = image.with_size(64, 64)
    assert sized.regions[0].outer == [[0, 0], [64, 0], [30, 63]]  # clipped within tolerance
    with pytest.raises(FormatError, match=r"a.png region 0 outer ring: point 1 has x=64.4 outside the image \(width 60\)"):
        image.with_size(60, 64)


def test_validate_polygon_checks_bounds_when_given():
    assert validate_polygon([[0, 0], [10, 0], [10, 10]], 10, 10) == [[0, 0], [10, 0], [10, 10]]
    with pytest.raises(FormatError, match="y=30 outside"):
        validate_polygon([[0, 0], [10, 0], [10, 30]], 10, 10, where="r")
    with pytest.raises(FormatError, match="expected a list"):
        validate_polygon("0,0", where="r")


# --- COCO --------------------------------------------------------------------------

def test_coco_export_import_round_trips_polygons_with_holes_and_labels():
    images = [
        AnnotatedImage("a.png", 64, 64, [Region(SQUARE, [HOLE, [[40, 40], [45, 40], [45.5, 45.25]]], "scratch")]),
        AnnotatedImage("b.png", 32, 40, [Region([[1, 1], [5, 1], [3, 4.5]], [], "dent"), Region(HOLE, [], "scratch")]),
        AnnotatedImage("c.png", 8, 8, []),
    ]
    doc = write_coco(images, label_names=["dent", "scratch"])
    assert [c["name"] for c in doc["categories"]] == ["dent", "scratch"]
    assert doc["annotations"][0]["area"] == pytest.approx(1600 - 100 - 13.125)
    back = parse_coco(json.dumps(doc))
    assert back == images


def test_coco_multi_ring_without_hole_marks_is_several_regions_and_rle_is_traced():
    mask = np.zeros((6, 5), np.uint8)
    mask[1:4, 1:3] = 1
    flat = mask.T.reshape(-1)  # column-major runs
    counts, run, value = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            run, value = 0, v
        run += 1
    counts.append(run)
    doc = {
        "images": [{"id": 7, "file_name": "x.png", "width": 5, "height": 6}],
        "categories": [{"id": 3, "name": "crack"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [[0, 0, 2, 0, 2, 2], [3, 3, 4, 3, 4, 4]]},
            {"id": 2, "image_id": 7, "category_id": 3, "segmentation": {"size": [6, 5], "counts": counts}, "iscrowd": 1},
        ],
    }
    (image,) = parse_coco(doc)
    assert len(image.regions) == 3 and {r.label for r in image.regions} == {"crack"}
    assert np.array_equal(rasterize(image.regions[2:], 5, 6) > 0, mask > 0)


def test_coco_compressed_rle_string_is_decoded():
    # pycocotools encodes a 4x4 mask with the 2x2 centre set as "52203" (runs 5, 2, 2, 2, 5).
    doc = {
        "images": [{"id": 1, "file_name": "x.png", "width": 4, "height": 4}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [4, 4], "counts": "52203"}}],
        "categories": [{"id": 1, "name": "a"}],
    }
    (image,) = parse_coco(doc)
    expected = np.zeros((4, 4), bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(rasterize(image.regions, 4, 4) > 0, expected)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"images": []}, "missing the 'annotations' list"),
        ({"images": [{"id": 1}], "annotations": []}, "image 0 needs an 'id' and a 'file_name'"),
        ({"images": [], "annotations": [{"image_id": 5}]}, "unknown image_id 5"),
        (
            {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
             "annotations": [{"id": 9, "image_id": 1, "segmentation": [[0, 0, 20, 0, 5, 5]]}]},
            r"a.png annotation 9 ring 0: point 1 has x=20 outside",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"id": 9, "image_id": 1, "segmentation": [[0, 0, 1]]}]},
            "even number of values",
        ),
    ],
)
def test_coco_malformed_input_is_a_format_error(doc, message):
    with pytest.raises(FormatError, match=message):
        parse_coco(doc)


# --- LabelMe -----------------------------------------------------------------------

def test_labelme_polygon_rectangle_and_circle():
    doc = {
        "imagePath": "..\\imgs\\part 1.jpg",
        "imageWidth": 100,
        "imageHeight": 80,
        "shapes": [
            {"label": "scratch", "points": SQUARE, "shape_type": "polygon"},
            {"label": "dent", "points": [[5, 5], [15, 25]], "shape_type": "rectangle"},
            {"label": "", "points": [[50, 40], [60, 40]], "shape_type": "circle"},
        ],
    }
    image = parse_labelme(json.dumps(doc))
    assert (image.file_name, image.width, image.height) == ("part 1.jpg", 100, 80)
    assert [r.label for r in image.regions] == ["scratch", "dent", "anomaly"]
    assert image.regions[1].outer == [[5, 5], [15, 5], [15, 25], [5, 25]]
    assert max(p[0] for p in image.regions[2].outer) == pytest.approx(60)


def test_labelme_errors_name_the_shape():
    base = {"imagePath": "a.png", "imageWidth": 10, "imageHeight": 10}
    with pytest.raises(FormatError, match="a.png shape 0: shape_type 'line' outlines no area"):
        parse_labelme({**base, "shapes": [{"points": [[0, 0], [1, 1]], "shape_type": "line"}]})
    with pytest.raises(FormatError, match="a.png shape 0: point 2 has y=12 outside"):
        parse_labelme({**base, "shapes": [{"points": [[0, 0], [1, 1], [2, 12]]}]})
    with pytest.raises(FormatError, match="missing 'imagePath'"):
        parse_labelme({"shapes": []})


# --- masks <-> polygons ------------------------------------------------------------

def test_rasterize_fills_outer_rings_and_cuts_holes():
    mask = rasterize([Region(SQUARE, [HOLE])], 64, 64)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert mask[15, 15] == 255 and mask[25, 25] == 0 and mask[5, 5] == 0
    assert mask[10, 10] == 255 and mask[50, 50] == 255  # boundary pixels belong to the region
    assert (mask > 0).sum() == 41 * 41 - 9 * 9  # hole boundary stays in the region
    # another region covering the hole still shows there
    assert rasterize([Region(SQUARE, [HOLE]), Region(HOLE)], 64, 64)[25, 25] == 255


def test_mask_to_polygons_round_trips_shapes_with_holes_islands_and_single_pixels():
    mask = np.zeros((48, 48), np.uint8)
    mask[5:30, 5:30] = 255
    mask[10:20, 10:20] = 0  # hole
    mask[14:16, 14:16] = 255  # island inside the hole
    mask[35, 35] = 255  # single pixel
    mask[40, 2:12] = 255  # one-pixel line
    for i in range(8):  # diagonal staircase
        mask[30 + i, 40 + i // 2] = 255
    regions = mask_to_polygons(mask, label="defect")
    assert sum(len(r.holes) for r in regions) == 1
    assert all(r.label == "defect" for r in regions)
    assert np.array_equal(rasterize(regions, 48, 48), mask)
    assert mask_to_polygons(np.zeros((8, 8), np.uint8)) == []


def test_mask_polygons_round_trip_on_real_masks():
    paths = sorted((dataset("mpdd_metal_plate") / "ground_truth" / "defective").glob("*.png"))[:8]
    paths += sorted((dataset("crackforest") / "masks").glob("*.png"))[:8]
    for path in paths:
        mask = np.array(Image.open(path).convert("L")) > 127
        back = rasterize(mask_to_polygons(mask), mask.shape[1], mask.shape[0]) > 0
        iou = (back & mask).sum() / max((back | mask).sum(), 1)
        assert iou > 0.98, path.name


# --- MVTec layout ------------------------------------------------------------------

def test_mvtec_layout_lists_splits_states_and_masks(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 1
    write_mvtec_sample(tmp_path, "train", "good", "n1.jpg", img)
    write_mvtec_sample(tmp_path, "test", "good", "n2.png", img)
    _, mask_path = write_mvtec_sample(tmp_path, "test", "scratch", "d1.png", img, mask)
    assert np.array_equal(np.array(Image.open(mask_path)), mask * 255)
    records = mvtec_layout(tmp_path)
    assert [(r.path.name, r.split, r.state, r.kind) for r in records] == [
        ("n1.png", "train", "normal", "good"),
        ("n2.png", "test", "normal", "good"),
        ("d1.png", "test", "anomalous", "scratch"),
    ]
    assert records[2].mask_path == mask_path and records[0].mask_path is None


def test_mvtec_layout_errors(tmp_path):
    with pytest.raises(FormatError, match="not an MVTec AD layout folder"):
        mvtec_layout(tmp_path)
    (tmp_path / "test" / "crack").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "test" / "crack" / "a.png")
    (tmp_path / "ground_truth" / "crack").mkdir(parents=True)
    with pytest.raises(FormatError, match="no mask for image 'a'"):
        mvtec_layout(tmp_path)


def test_mvtec_layout_on_real_data():
    records = mvtec_layout(dataset("mpdd_metal_plate"))
    assert sum(r.split == "train" for r in records) == 54
    test = [r for r in records if r.split == "test"]
    assert (sum(r.state == "normal" for r in test), sum(r.state == "anomalous" for r in test)) == (26, 21)
    assert all(r.mask_path is not None for r in test if r.state == "anomalous")


# --- real VIA file -----------------------------------------------------------------

def test_car_damage_via_counts():
    root = dataset("car_damage_via")
    images, annotated, polygons = 0, 0, 0
    for split in ("train", "val"):
        folder = root / split
        files = [p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
        images += len(files)
        for record in parse_via((folder / "via_region_data.json").read_bytes()):
            width, height = Image.open(folder / record.file_name).size
            record = record.with_size(width, height)
            annotated += bool(record.regions)
            polygons += len(record.regions)
            assert all(r.label == "damage" or r.label == "anomaly" for r in record.regions)
            assert rasterize(record.regions, width, height).any() == bool(record.regions)
    assert (images, annotated, polygons) == (75, 61, 117)

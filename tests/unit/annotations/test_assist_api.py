"""The annotate page's labelling aids over the API: brush / eraser, box (GrabCut) and superpixel
answer polygons the versioned save accepts, save nothing themselves, refuse bad input with a
reason and are for annotators and admins only."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations.models import AnnotationSet
from ml.assist import pixel_area
from ml.formats.common import Region
from projects.services import image_upload

pytestmark = pytest.mark.django_db


def _scene_png() -> bytes:
    """200 x 120: light noise with a dark 60 x 40 rectangle at (70, 40)."""
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(200, 8, (120, 200, 3)), 0, 255).astype(np.uint8)
    pixels[40:80, 70:130] = np.clip(rng.normal(50, 8, (40, 60, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image(project, alice):
    return image_upload(project=project, files=[("scene.png", _scene_png())], uploaded_by=alice).created[0]


def _area(polygons, image):
    return pixel_area([Region(outer=p["outer"], holes=p["holes"]) for p in polygons], image.width, image.height)


@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 200), ("charlie", 403), ("dave", 404)])
def test_only_annotators_and_admins_use_the_tools(personas_api, image, who, status):
    body = {"polygons": [], "strokes": [{"points": [[50, 50]], "radius": 5}]}
    assert personas_api[who].post(f"/api/images/{image.pk}/annotation-tools/paint/", body, format="json").status_code == status


def test_brush_then_save_keeps_the_painted_area(bob_api, image):
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/paint/",
                       {"polygons": [], "label_class": None, "strokes": [{"points": [[100, 60]], "radius": 20}]}, format="json")
    assert res.status_code == 200
    polygons = res.json()["polygons"]
    assert len(polygons) == 1
    assert abs(_area(polygons, image) - math.pi * 400) / (math.pi * 400) < 0.02
    assert not AnnotationSet.objects.filter(image=image, version__gt=0).exists()  # nothing saved by the tool
    saved = bob_api.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "polygons": polygons}, format="json")
    assert saved.status_code == 200, saved.json()
    mask = np.asarray(PILImage.open(io.BytesIO(bob_api.get(f"/api/images/{image.pk}/mask.png").content)))
    assert abs(int((mask > 0).sum()) - _area(polygons, image)) <= 2


def test_eraser_cuts_a_hole_the_save_accepts(bob_api, image):
    square = {"outer": [[20, 20], [180, 20], [180, 100], [20, 100]], "holes": [], "label_class": None}
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/paint/",
                       {"polygons": [square], "strokes": [{"points": [[100, 60]], "radius": 10, "erase": True}]}, format="json")
    polygons = res.json()["polygons"]
    assert len(polygons) == 1 and len(polygons[0]["holes"]) == 1
    assert bob_api.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "polygons": polygons}, format="json").status_code == 200


def test_box_to_polygon_finds_the_rectangle(bob_api, image):
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/box/", {"polygons": [], "box": [60, 30, 140, 90]}, format="json")
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["used_heatmap"] is False
    assert len(body["polygons"]) == 1
    assert abs(_area(body["polygons"], image) - 60 * 40) / (60 * 40) < 0.02


def test_superpixel_click_adds_a_region_on_the_rectangle(bob_api, image):
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/superpixel/", {"polygons": [], "point": [100, 60]}, format="json")
    assert res.status_code == 200, res.json()
    polygons = res.json()["polygons"]
    assert len(polygons) == 1
    xs = [x for x, _ in polygons[0]["outer"]]
    ys = [y for _, y in polygons[0]["outer"]]
    assert min(xs) >= 68 and max(xs) <= 131 and min(ys) >= 38 and max(ys) <= 81  # snapped inside the rectangle's edges


@pytest.mark.parametrize("path, body, needle", [
    ("paint", {"polygons": [], "strokes": []}, "strokes"),
    ("paint", {"polygons": [], "strokes": [{"points": [[1, 1]], "radius": -3}]}, "radius"),
    ("paint", {"polygons": [], "strokes": [{"points": [["a", 1]], "radius": 3}]}, "finite number"),
    ("paint", {"polygons": [{"outer": [[0, 0], [1, 1]]}], "strokes": [{"points": [[1, 1]], "radius": 3}]}, "polygon 0"),
    ("paint", {"polygons": [], "label_class": 99999, "strokes": [{"points": [[1, 1]], "radius": 3}]}, "label class"),
    ("box", {"polygons": [], "box": [1, 2, 3]}, "box"),
    ("box", {"polygons": [], "box": [500, 500, 600, 600]}, "3 x 3"),
    ("superpixel", {"polygons": [], "point": [1000, 5]}, "outside"),
])
def test_bad_input_is_refused_naming_the_problem(bob_api, image, path, body, needle):
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/{path}/", body, format="json")
    assert res.status_code == 400
    assert needle in str(res.json())

"""Road-scene labels: stable class indices and the class-index mask derived from polygons."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations import selectors, services
from annotations.models import LabelClass
from projects.errors import Conflict
from projects.models import Project

pytestmark = pytest.mark.django_db

LEFT = [[0, 0], [31, 0], [31, 63], [0, 63]]
RING = [[10, 10], [50, 10], [50, 50], [10, 50]]
HOLE = [[20, 20], [40, 20], [40, 40], [20, 40]]


@pytest.fixture
def road(project):
    project.kind = Project.Kind.ROAD_SCENE
    project.save(update_fields=["kind"])
    return project


def _classes(image) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(selectors.image_class_mask_png(image=image))))


def test_classes_are_numbered_in_creation_order_and_void_takes_255(road, alice):
    sky = services.label_class_create(project=road, name="sky", actor=alice)
    road_class = services.label_class_create(project=road, name="road", actor=alice)
    void = services.label_class_create(project=road, name="void", actor=alice)
    car = services.label_class_create(project=road, name="car", actor=alice)

    assert [sky.index, road_class.index, car.index, void.index] == [0, 1, 2, 255]
    assert [c.name for c in selectors.label_class_list(project=road)] == ["sky", "road", "car", "void"]
    assert services.project_void_index(road) == 255


def test_a_taken_index_is_a_conflict_and_creates_nothing(road, alice):
    services.label_class_create(project=road, name="sky", index=4, actor=alice)
    with pytest.raises(Conflict):
        services.label_class_create(project=road, name="road", index=4, actor=alice)
    assert list(LabelClass.objects.filter(project=road).values_list("name", flat=True)) == ["sky"]


def test_road_scene_mask_holds_class_indices_void_where_nothing_is_drawn(road, alice, bob, image_factory):
    image = image_factory(road, size=64)[0]
    sky = services.label_class_create(project=road, name="sky", actor=alice)
    car = services.label_class_create(project=road, name="car", actor=alice)
    void = services.label_class_create(project=road, name="void", index=11, actor=alice)

    services.annotations_replace(
        image=image, expected_version=0, actor=bob,
        polygons=[{"outer": LEFT, "label_class": sky.pk},
                  {"outer": RING, "holes": [HOLE], "label_class": car.pk},
                  {"outer": [[60, 60], [63, 60], [63, 63], [60, 63]], "label_class": void.pk}],
    )

    classes = _classes(image)
    assert classes.shape == (64, 64)
    assert classes[5, 5] == sky.index  # only the sky polygon
    assert classes[15, 15] == car.index  # the car ring, drawn later, covers the sky
    assert classes[30, 30] == sky.index  # the car's hole shows the sky below
    assert classes[30, 45] == car.index
    assert classes[5, 45] == 11  # nothing drawn: void
    assert classes[62, 62] == 11  # void drawn explicitly
    assert set(np.unique(classes)) == {0, 1, 11}


def test_binary_projects_keep_their_0_255_mask_and_no_class_mask(project, bob, image_factory):
    image = image_factory(project, size=64)[0]
    services.annotations_replace(image=image, polygons=[{"outer": RING}], expected_version=0, actor=bob)

    data, _ = selectors.image_mask_png(image=image)
    assert set(np.unique(np.asarray(PILImage.open(io.BytesIO(data))))) == {0, 255}
    assert selectors.image_class_mask_png(image=image) is None


def test_api_lists_index_and_accepts_one(alice_api, road):
    response = alice_api.post(f"/api/projects/{road.pk}/label-classes/", {"name": "road", "index": 7}, format="json")
    assert response.status_code == 201 and response.json()["index"] == 7
    bad = alice_api.post(f"/api/projects/{road.pk}/label-classes/", {"name": "sky", "index": 300}, format="json")
    assert bad.status_code == 400 and "index" in str(bad.json())
    listed = alice_api.get(f"/api/projects/{road.pk}/label-classes/").json()
    assert [(c["name"], c["index"]) for c in listed] == [("road", 7)]


def test_the_index_of_a_class_cannot_change(alice_api, road):
    created = alice_api.post(f"/api/projects/{road.pk}/label-classes/", {"name": "road"}, format="json").json()
    url = f"/api/projects/{road.pk}/label-classes/{created['id']}/"
    refused = alice_api.patch(url, {"index": 5}, format="json")
    assert refused.status_code == 400 and "cannot change" in str(refused.json())
    renamed = alice_api.patch(url, {"name": "street", "index": created["index"]}, format="json")
    assert renamed.status_code == 200 and renamed.json()["index"] == created["index"]

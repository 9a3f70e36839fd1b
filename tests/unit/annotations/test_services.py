"""Annotation services: versioned full-set saves, polygon checks, masks with holes, drafts, label classes."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations import selectors, services
from annotations.models import Annotation, AnnotationSet, LabelClass
from projects.errors import ApplicationError, Conflict
from projects.models import AuditEvent, Image

pytestmark = pytest.mark.django_db

SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
HOLE = [[20, 20], [40, 20], [40, 40], [20, 40]]


def _mask(image) -> np.ndarray:
    data, _etag = selectors.image_mask_png(image=image)
    return np.asarray(PILImage.open(io.BytesIO(data)))


@pytest.fixture
def image(project, image_factory):
    return image_factory(project, size=64)[0]


def test_save_bumps_version_stores_polygons_and_marks_the_image_anomalous(image, bob):
    saved = services.annotations_replace(image=image, polygons=[{"outer": SQUARE}], expected_version=0, actor=bob)

    assert saved.version == 1 and not saved.is_draft
    view = selectors.image_annotations_get(image=image)
    assert [a.polygon for a in view.annotations] == [{"outer": [[float(x), float(y)] for x, y in SQUARE], "holes": []}]
    assert view.annotations[0].label_class.name == services.DEFAULT_LABEL_CLASS
    assert view.annotations[0].author == bob and view.annotations[0].source == Annotation.Source.MANUAL
    image.refresh_from_db()
    assert image.state == Image.State.ANOMALOUS
    assert AuditEvent.objects.filter(verb="annotations.replace", actor=bob, details__version=1).exists()


def test_mask_fills_the_outer_ring_and_cuts_the_hole(image, bob):
    services.annotations_replace(image=image, polygons=[{"outer": SQUARE, "holes": [HOLE]}], expected_version=0, actor=bob)

    mask = _mask(image)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert mask[15, 15] == 255  # in the ring
    assert mask[30, 30] == 0  # inside the hole
    assert mask[5, 5] == 0 and mask[60, 60] == 0  # outside


def test_stale_version_is_refused_and_changes_nothing(image, bob, alice):
    services.annotations_replace(image=image, polygons=[{"outer": SQUARE}], expected_version=0, actor=bob)
    before_mask = _mask(image)
    before_events = AuditEvent.objects.count()

    with pytest.raises(Conflict) as caught:
        services.annotations_replace(image=image, polygons=[], expected_version=0, actor=alice)

    assert "version 1" in caught.value.message and "version 0" in caught.value.message
    assert caught.value.status == 409
    annotation_set = AnnotationSet.objects.get(image=image)
    assert annotation_set.version == 1 and annotation_set.annotations.count() == 1
    assert np.array_equal(_mask(image), before_mask)
    image.refresh_from_db()
    assert image.state == Image.State.ANOMALOUS
    assert AuditEvent.objects.count() == before_events


@pytest.mark.parametrize(
    "polygon, words",
    [
        ({"outer": [[1, 1], [5, 5]]}, "at least 3"),
        ({"outer": [[1, 1], [5, 5], [1, 1]]}, "at least 3"),
        ({"outer": [[1, 1], [math.nan, 5], [9, 1]]}, "point 1"),
        ({"outer": [[1, 1], [5, math.inf], [9, 1]]}, "non-finite"),
        ({"outer": [[1, 1], [500, 5], [9, 1]]}, "outside the image"),
        ({"outer": [[1, 1], [5, -3], [9, 1]]}, "outside the image"),
        ({"outer": [[1, 1], ["a", 5], [9, 1]]}, "non-numeric"),
        ({"outer": SQUARE, "holes": [[[0, 0], [5, 0], [5, 5]]]}, "not inside"),
        ({"outer": SQUARE, "label_class": 999999}, "label class"),
        ({"holes": []}, "'outer'"),
    ],
)
def test_bad_polygons_are_refused_with_the_polygon_named_and_nothing_saved(image, bob, polygon, words):
    good = {"outer": SQUARE}
    with pytest.raises(ApplicationError) as caught:
        services.annotations_replace(image=image, polygons=[good, polygon], expected_version=0, actor=bob)

    assert caught.value.status == 400
    assert "polygon 1" in caught.value.message and words in caught.value.message
    assert not AnnotationSet.objects.filter(image=image, version__gt=0).exists()
    assert not Annotation.objects.exists()
    image.refresh_from_db()
    assert image.state == Image.State.UNLABELED


def test_a_vertex_a_hair_outside_is_clipped_to_the_border(image, bob):
    services.annotations_replace(
        image=image, polygons=[{"outer": [[-0.5, 0], [64.4, 0], [64, 64]]}], expected_version=0, actor=bob
    )
    outer = Annotation.objects.get().polygon["outer"]
    assert outer == [[0.0, 0.0], [64.0, 0.0], [64.0, 64.0]]


def test_saving_an_empty_set_marks_the_image_normal_with_an_all_zero_mask(image, bob):
    services.annotations_replace(image=image, polygons=[{"outer": SQUARE}], expected_version=0, actor=bob)
    services.annotations_replace(image=image, polygons=[], expected_version=1, actor=bob)

    image.refresh_from_db()
    assert image.state == Image.State.NORMAL
    assert AnnotationSet.objects.get(image=image).version == 2
    assert not _mask(image).any() and _mask(image).shape == (64, 64)


def test_an_image_never_annotated_has_version_0_and_an_all_zero_mask(image):
    view = selectors.image_annotations_get(image=image)
    assert view.version == 0 and view.annotations == [] and not view.is_draft
    assert _mask(image).shape == (64, 64) and not _mask(image).any()


def test_polygons_keep_their_label_class(project, image, bob, alice):
    scratch = services.label_class_create(project=project, name="scratch", actor=alice)
    dent = services.label_class_create(project=project, name="dent", color="#00FF00", actor=alice)
    services.annotations_replace(
        image=image,
        polygons=[{"outer": SQUARE, "label_class": scratch.pk}, {"outer": HOLE, "label_class": {"id": dent.pk}}],
        expected_version=0, actor=bob,
    )
    assert [a.label_class.name for a in selectors.image_annotations_get(image=image).annotations] == ["scratch", "dent"]
    assert dent.color == "#00ff00"


def test_a_label_class_of_another_project_is_refused(image, bob, other_project):
    foreign = LabelClass.objects.create(project=other_project, name="rust")
    with pytest.raises(ApplicationError, match="not a class of this project"):
        services.annotations_replace(image=image, polygons=[{"outer": SQUARE, "label_class": foreign.pk}],
                                     expected_version=0, actor=bob)


def test_draft_from_prediction_only_when_the_image_has_no_annotation(image, bob, charlie):
    draft = services.annotation_draft_from_prediction(image=image, polygons=[{"outer": SQUARE}], actor=charlie)

    assert draft is not None and draft.is_draft and draft.version == 1
    assert Annotation.objects.get().source == Annotation.Source.PREDICTION
    image.refresh_from_db()
    assert image.state == Image.State.UNLABELED  # a draft is nobody's judgement yet
    assert _mask(image)[30, 30] == 255

    assert services.annotation_draft_from_prediction(image=image, polygons=[{"outer": HOLE}], actor=charlie) is None
    assert AnnotationSet.objects.get(image=image).version == 1

    refined = services.annotations_replace(image=image, polygons=[{"outer": HOLE}], expected_version=1, actor=bob)
    assert not refined.is_draft and refined.version == 2


def test_a_draft_replaces_an_empty_set_and_bumps_its_version(image, bob, charlie):
    services.annotations_replace(image=image, polygons=[], expected_version=0, actor=bob)  # marked normal
    assert services.annotation_draft_from_prediction(image=image, polygons=[], actor=charlie) is None

    draft = services.annotation_draft_from_prediction(image=image, polygons=[{"outer": SQUARE}], actor=charlie)

    assert draft.version == 2 and draft.is_draft
    with pytest.raises(Conflict):  # bob's editor still holds version 1
        services.annotations_replace(image=image, polygons=[], expected_version=1, actor=bob)


def test_label_classes_create_update_delete(project, alice, image, bob):
    lc = services.label_class_create(project=project, name=" dent ", actor=alice)
    assert lc.name == "dent" and lc.color.startswith("#")
    with pytest.raises(Conflict):
        services.label_class_create(project=project, name="dent", actor=alice)
    with pytest.raises(ApplicationError, match="colour"):
        services.label_class_update(label_class=lc, color="red", actor=alice)
    services.label_class_update(label_class=lc, name="deep dent", color="#123456", actor=alice)
    lc.refresh_from_db()
    assert (lc.name, lc.color) == ("deep dent", "#123456")

    services.annotations_replace(image=image, polygons=[{"outer": SQUARE, "label_class": lc.pk}],
                                 expected_version=0, actor=bob)
    with pytest.raises(Conflict, match="used by 1 polygon"):
        services.label_class_delete(label_class=lc, actor=alice)
    services.annotations_replace(image=image, polygons=[], expected_version=1, actor=bob)
    services.label_class_delete(label_class=lc, actor=alice)
    assert not LabelClass.objects.filter(pk=lc.pk).exists()
    assert AuditEvent.objects.filter(verb="label_class.delete", actor=alice).exists()

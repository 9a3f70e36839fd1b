"""The queue of images most worth labelling next, and downloading a model version's artifact."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from annotations.services import annotations_replace
from inspection.models import ModelVersion, Prediction
from projects.models import Image

pytestmark = pytest.mark.django_db

SQUARE = [[5, 5], [20, 5], [20, 20], [5, 20]]


@pytest.fixture
def version(project):
    mv = ModelVersion.objects.create(
        project=project, number=1, pipeline="patchcore", threshold=10.0, region_threshold=10.0, is_active=True,
        normalization={"min": 0.0, "threshold": 10.0, "max": 20.0},
    )
    mv.artifact.save("artifact.pt", ContentFile(b"model bytes"), save=True)
    return mv


def _scored(image_factory, project, version, scores, split="train", seed=0):
    images = image_factory(project, n=len(scores), split=split, seed=seed)
    for image, score in zip(images, scores):
        Prediction.objects.create(image=image, model_version=version, score=score, heatmap="", heatmap_min=0, heatmap_max=score)
    return images


def test_unsure_images_first_then_high_scores_then_unscored_never_test_or_done(project, version, image_factory, bob, bob_api):
    far_low, near_above, high, near_below, very_high = _scored(image_factory, project, version, [1.0, 10.5, 17.0, 9.0, 19.5])
    test_image = _scored(image_factory, project, version, [10.0], split="test", seed=20)[0]
    unscored = image_factory(project, n=1, seed=30)[0]
    normal = _scored(image_factory, project, version, [10.1], seed=40)[0]
    Image.objects.filter(pk=normal.pk).update(state=Image.State.NORMAL)
    done = _scored(image_factory, project, version, [10.05], seed=50)[0]
    annotations_replace(image=done, polygons=[{"outer": SQUARE}], expected_version=0, actor=bob)

    res = bob_api.get(f"/api/projects/{project.pk}/annotation-queue/")
    assert res.status_code == 200
    body = res.json()
    order = [r["image"]["id"] for r in body["results"]]
    assert order == [near_above.pk, near_below.pk, very_high.pk, high.pk, far_low.pk, unscored.pk]
    kinds = [r["kind"] for r in body["results"]]
    assert kinds == ["unsure", "unsure", "high", "high", "low", "unscored"]
    assert "unsure" in body["results"][0]["reason"] and "0.53" in body["results"][0]["reason"]
    assert "High anomaly score" in body["results"][2]["reason"]
    assert body["model_version"]["number"] == 1
    assert test_image.pk not in order and normal.pk not in order and done.pk not in order


def test_unsure_means_close_to_the_region_threshold(project, version, image_factory, bob_api):
    # Region threshold 14 (normalised 0.70): an image whose map peaks at 14 is the one in doubt about
    # whether anything should be outlined; one at the image threshold (10, normalised 0.50) is not.
    ModelVersion.objects.filter(pk=version.pk).update(region_threshold=14.0)
    at_image_threshold, at_region_threshold = _scored(image_factory, project, version, [10.0, 14.2])
    results = bob_api.get(f"/api/projects/{project.pk}/annotation-queue/").json()["results"]
    assert [(r["image"]["id"], r["kind"]) for r in results] == [
        (at_region_threshold.pk, "unsure"), (at_image_threshold.pk, "low")]
    assert "region threshold (0.70)" in results[0]["reason"]


@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 200), ("charlie", 403), ("dave", 404)])
def test_the_queue_is_for_annotators_and_admins(personas_api, project, who, status):
    assert personas_api[who].get(f"/api/projects/{project.pk}/annotation-queue/").status_code == status


def test_without_an_active_model_every_candidate_is_unscored(project, image_factory, bob_api):
    images = image_factory(project, n=2)
    body = bob_api.get(f"/api/projects/{project.pk}/annotation-queue/").json()
    assert [r["image"]["id"] for r in body["results"]] == [i.pk for i in images]
    assert body["model_version"] is None
    assert all(r["kind"] == "unscored" for r in body["results"])


@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 403), ("charlie", 403), ("dave", 404)])
def test_admins_download_the_artifact(personas_api, project, version, who, status):
    res = personas_api[who].get(f"/api/model-versions/{version.pk}/artifact")
    assert res.status_code == status
    if status == 200:
        assert res.content == b"model bytes"
        assert f"{project.slug}-v1-patchcore.pt" in res["Content-Disposition"]

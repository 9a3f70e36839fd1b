"""Comparing model versions honestly: which way each metric is better, the same evaluation set
(and a job that evaluates an older version on the current test split), the training-set size
as it was; and undoing a verdict."""
from __future__ import annotations

import pytest

from projects.models import AuditEvent, Image, Job

pytestmark = pytest.mark.django_db


def test_every_metric_says_which_way_is_better(trained, charlie_api):
    model_version, _ = trained
    catalogue = charlie_api.get("/api/metrics/").json()
    assert catalogue["image_auroc"] == {"label": "Image AUROC", "better": "higher"}
    # An error rate: the smaller value wins (the issue saw 0.400 bolded over 0).
    assert catalogue["image_fpr_at_95_tpr"]["better"] == "lower"
    assert catalogue["pixel_fpr_at_95_tpr"]["better"] == "lower"
    assert catalogue["image_false_positive_rate"]["better"] == "lower"
    # Counts and thresholds describe a version; they are not a contest.
    assert catalogue["images"]["better"] is None and catalogue["threshold"]["better"] is None
    # Every metric a trained version carries has a name and a direction.
    unknown = set(model_version.metrics) - set(catalogue)
    assert not unknown, unknown


def _versions(client, project):
    return {v["number"]: v for v in client.get(f"/api/projects/{project.pk}/model-versions/").json()["results"]}


def test_versions_on_different_test_sets_are_told_apart_and_can_be_evaluated_on_the_same(
    project, trained, alice, alice_api, upload, run_job_now
):
    from inspection.services.evaluation import evaluation_job_run
    from inspection.services.training import training_job_start

    first, data = trained
    v1 = _versions(alice_api, project)[1]
    assert v1["evaluation"]["count"] == 5 and v1["evaluation"]["is_current"] is True
    assert v1["snapshot"]["train_images"] == 6  # not the 11 images of the whole snapshot

    # The test split grows, and a second version trains on more images.
    upload(project, range(300, 302), split="test")
    upload(project, range(10, 13))
    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"image_size": 48}))
    assert job.status == "succeeded", job.error
    versions = _versions(alice_api, project)
    assert versions[2]["evaluation"]["count"] == 7 and versions[2]["evaluation"]["is_current"] is True
    assert versions[2]["snapshot"]["train_images"] == 9 and versions[1]["snapshot"]["train_images"] == 6
    assert versions[1]["evaluation"]["key"] != versions[2]["evaluation"]["key"]
    assert versions[1]["evaluation"]["is_current"] is False

    # Evaluate v1 on the current test split: same set as v2, metrics at v1's own thresholds.
    response = alice_api.post(f"/api/model-versions/{first.pk}/evaluate")
    assert response.status_code == 201 and response.json()["kind"] == "evaluation"
    evaluation_job_run(job_id=response.json()["id"])
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result["images"] == 7 and job.result["model_version"] == first.pk
    versions = _versions(alice_api, project)
    assert versions[1]["evaluation"]["key"] == versions[2]["evaluation"]["key"]
    assert versions[1]["evaluation"]["is_current"] is True and versions[1]["evaluation"]["source"] == "test split"
    assert versions[1]["metrics"]["images"] == 7
    assert versions[1]["threshold"] == first.threshold  # thresholds are the version's, untouched


def test_an_annotation_change_makes_a_different_evaluation_set(project, trained, alice, alice_api):
    from annotations.services import annotations_replace

    _, data = trained
    image = data["test_defect"][0]
    annotations_replace(image=image, polygons=[{"outer": [[1, 1], [9, 1], [9, 9], [1, 9]]}], expected_version=1, actor=alice)
    assert _versions(alice_api, project)[1]["evaluation"]["is_current"] is False


def test_evaluation_needs_labelled_test_images_and_an_admin(project, trained, alice_api, charlie_api):
    model_version, _ = trained
    assert charlie_api.post(f"/api/model-versions/{model_version.pk}/evaluate").status_code == 403
    Image.objects.filter(project=project, split__in=["test", "val"]).update(state="unlabeled")
    response = alice_api.post(f"/api/model-versions/{model_version.pk}/evaluate")
    assert response.status_code == 400 and "no labelled test" in response.json()["error"]
    assert not Job.objects.filter(kind="evaluation").exists()


def test_a_verdict_is_undone_with_its_effect_on_the_image(project, trained, charlie, charlie_api, alice_api):
    from inspection.models import Prediction, Review

    _, data = trained
    image = data["test_normal"][0]
    prediction = Prediction.objects.get(image=image)
    assert (image.split, image.state) == ("test", "normal")
    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "anomaly"}, format="json")
    review_id = response.json()["review"]["id"]
    image.refresh_from_db()
    assert image.state == "anomalous"

    # Only the reviewer undoes it (an admin gets a clear refusal, an outsider a 404).
    assert alice_api.delete(f"/api/reviews/{review_id}/").status_code == 400
    response = charlie_api.delete(f"/api/reviews/{review_id}/")
    assert response.status_code == 200 and response.json()["verdict"] is None and response.json()["reviewed"] is False
    image.refresh_from_db()
    assert (image.split, image.state) == ("test", "normal")
    assert not Review.objects.filter(pk=review_id).exists()
    assert AuditEvent.objects.filter(verb="prediction.review_undo").count() == 1
    assert charlie_api.delete(f"/api/reviews/{review_id}/").status_code == 404


def test_undo_removes_the_untouched_draft_and_refuses_when_a_later_verdict_came(project, trained, charlie_api, alice_api,
                                                                                 run_job_now):
    from inspection.models import Prediction
    from projects.models import Job

    _, data = trained
    image = data["train"][0]
    prediction = Prediction.objects.get(image=image)
    alice_api.patch(f"/api/model-versions/{prediction.model_version_id}/", {"region_threshold": 0.0}, format="json")
    run_job_now(Job.objects.get(kind="redraw"))  # the regions at the new region threshold
    first = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "anomaly"}, format="json").json()
    image.refresh_from_db()
    assert image.annotation_set.is_draft and image.annotation_set.annotations.exists()
    second = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "unsure"}, format="json").json()
    assert charlie_api.delete(f"/api/reviews/{first['review']['id']}/").status_code == 409
    assert charlie_api.delete(f"/api/reviews/{second['review']['id']}/").status_code == 200
    assert charlie_api.delete(f"/api/reviews/{first['review']['id']}/").status_code == 200
    image.refresh_from_db()
    assert (image.split, image.state) == ("train", "normal")
    assert not image.annotation_set.annotations.exists()

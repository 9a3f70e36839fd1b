"""The review loop: queue order and filters, verdicts and their effects, roles, audit."""
from __future__ import annotations

import pytest

from annotations.models import AnnotationSet
from inspection.models import Prediction, Review
from projects.models import AuditEvent, Image

pytestmark = pytest.mark.django_db


def _changed(effect: dict) -> dict:
    """What a verdict changed (its effect without the image's state and split before it)."""
    return {k: v for k, v in effect.items() if k != "before"}


def _queue(client, project, **params):
    response = client.get(f"/api/projects/{project.pk}/review-queue/", params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_queue_puts_flagged_unreviewed_first_by_score(trained, project, charlie_api):
    model_version, data = trained
    queue = _queue(charlie_api, project)
    assert len(queue) == 11
    flagged = [item for item in queue[:3]]
    assert all(item["flagged"] and not item["reviewed"] for item in flagged)
    assert [i["score"] for i in flagged] == sorted((i["score"] for i in flagged), reverse=True)
    assert {i["image"]["id"] for i in flagged} == {i.pk for i in data["test_defect"]}
    first = queue[0]
    assert first["threshold"] == pytest.approx(model_version.threshold)
    # Signed links to the same bytes the authenticated endpoints serve.
    assert first["heatmap_url"].startswith("/api/files/") and first["image"]["file_url"].startswith("/api/files/")
    assert b"".join(charlie_api.get(first["heatmap_url"])) == b"".join(charlie_api.get(f"/api/predictions/{first['id']}/heatmap.png"))
    assert {"min", "max"} == set(first["heatmap_range"])

    charlie_api.post(f"/api/predictions/{first['id']}/review", {"verdict": "unsure"}, format="json")
    queue = _queue(charlie_api, project)
    # Reviewed predictions move behind every unreviewed one.
    assert [i["flagged"] for i in queue[:3]] == [True, True, False] and queue[-1]["id"] == first["id"]
    assert [i["id"] for i in _queue(charlie_api, project, reviewed="true")] == [first["id"]]
    assert len(_queue(charlie_api, project, flagged="true", reviewed="false")) == 2
    assert len(_queue(charlie_api, project, flagged="false")) == 8
    assert [i["verdict"] for i in _queue(charlie_api, project, verdict="unsure")] == ["unsure"]
    assert charlie_api.get(f"/api/projects/{project.pk}/review-queue/", {"flagged": "maybe"}).status_code == 400


def test_queue_is_empty_without_an_active_model(project, dataset, charlie_api):
    assert _queue(charlie_api, project) == []


def test_normal_verdict_adds_an_unassigned_image_to_train(trained, project, upload, charlie, charlie_api, run_job_now):
    from inspection.services.inference import inference_job_start

    (image,) = upload(project, [778], split="unassigned", state="unlabeled")
    run_job_now(inference_job_start(project=project, user=None, image_ids=[image.pk]))
    prediction = Prediction.objects.get(image=image, model_version=trained[0])
    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "normal", "comment": "glare"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["review"]["verdict"] == "normal" and body["review"]["reviewer"] == "charlie"
    assert _changed(body["review"]["effect"]) == {"state": "normal", "split": "train"}
    assert body["review"]["effect"]["before"] == {"state": "unlabeled", "split": "unassigned"}
    assert body["prediction"]["reviewed"] and body["prediction"]["image"]["state"] == "normal"
    image.refresh_from_db()
    assert (image.state, image.split) == ("normal", "train")
    event = AuditEvent.objects.get(verb="prediction.review")
    assert event.actor == charlie and event.details["verdict"] == "normal" and event.details["comment"] == "glare"
    # Undo puts back what the verdict changed: the image leaves train again.
    assert charlie_api.delete(f"/api/reviews/{body['review']['id']}/").status_code == 200
    image.refresh_from_db()
    assert (image.state, image.split) == ("unlabeled", "unassigned")


@pytest.mark.parametrize("split", ["test", "val"])
def test_normal_verdict_never_moves_an_image_out_of_the_test_or_validation_split(trained, split, charlie_api):
    _, data = trained
    image = data["test_normal"][0]
    Image.objects.filter(pk=image.pk).update(split=split, state="unlabeled")
    prediction = Prediction.objects.get(image=image)
    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "normal"}, format="json")
    assert response.status_code == 201 and _changed(response.json()["review"]["effect"]) == {"state": "normal"}
    image.refresh_from_db()
    assert (image.state, image.split) == ("normal", split)
    # Undo restores the state only: the split was never touched, and a split changed since (by
    # a person) stays as it is now.
    Image.objects.filter(pk=image.pk).update(split="train" if split == "val" else "val")
    assert charlie_api.delete(f"/api/reviews/{response.json()['review']['id']}/").status_code == 200
    image.refresh_from_db()
    assert (image.state, image.split) == ("unlabeled", "train" if split == "val" else "val")


def test_normal_verdict_on_an_image_a_person_outlined_is_flagged_not_applied(trained, charlie_api):
    _, data = trained
    image = data["test_defect"][0]  # a person's polygons (dataset fixture)
    before = AnnotationSet.objects.get(image=image)
    prediction = Prediction.objects.get(image=image)
    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "normal"}, format="json")
    assert response.status_code == 201
    assert "polygons drawn by a person" in response.json()["review"]["effect"]["flagged"]
    image.refresh_from_db()
    assert (image.state, image.split) == ("anomalous", "test")
    after = AnnotationSet.objects.get(image=image)
    assert (after.version, after.annotations.count()) == (before.version, before.annotations.count())
    assert Review.objects.get().effect["flagged"]
    # A flagged verdict changed nothing, so its undo changes nothing either (even after the
    # image's state was settled by someone meanwhile).
    Image.objects.filter(pk=image.pk).update(state="normal")
    assert charlie_api.delete(f"/api/reviews/{response.json()['review']['id']}/").status_code == 200
    image.refresh_from_db()
    assert (image.state, image.split) == ("normal", "test") and not Review.objects.exists()


def test_anomaly_verdict_marks_the_image_and_drafts_an_annotation_from_the_prediction(trained, project, upload, charlie_api, run_job_now):
    from inspection.services.inference import inference_job_start

    model_version, _ = trained
    (image,) = upload(project, [777], defect=True, split="unassigned", state="unlabeled")
    run_job_now(inference_job_start(project=project, user=None, image_ids=[image.pk]))
    prediction = Prediction.objects.get(image=image, model_version=model_version)
    assert prediction.flagged and prediction.polygons

    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "anomaly"}, format="json")
    assert response.status_code == 201
    image.refresh_from_db()
    assert image.state == "anomalous"
    annotation_set = AnnotationSet.objects.get(image=image)
    assert annotation_set.is_draft and annotation_set.version == 1
    (annotation,) = annotation_set.annotations.all()
    assert annotation.source == "prediction" and annotation.polygon["outer"] == prediction.polygons[0]["outer"]


def test_anomaly_verdict_keeps_an_existing_annotation(trained, charlie_api):
    _, data = trained
    image = data["test_defect"][0]  # annotated by a person in the dataset fixture
    before = AnnotationSet.objects.get(image=image)
    prediction = Prediction.objects.get(image=image)
    charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "anomaly"}, format="json")
    after = AnnotationSet.objects.get(image=image)
    assert (after.version, after.is_draft) == (before.version, False)


def test_unsure_changes_nothing_but_is_recorded(trained, charlie_api):
    _, data = trained
    image = data["test_normal"][0]
    prediction = Prediction.objects.get(image=image)
    charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "unsure", "comment": "blurry"}, format="json")
    image.refresh_from_db()
    assert (image.state, image.split) == ("normal", "test")
    assert Review.objects.get().comment == "blurry"
    assert AuditEvent.objects.filter(verb="prediction.review").count() == 1


def test_admins_review_annotators_and_outsiders_do_not(trained, alice_api, bob_api, dave_api):
    _, data = trained
    prediction = Prediction.objects.get(image=data["test_defect"][0])
    url = f"/api/predictions/{prediction.pk}/review"
    assert bob_api.post(url, {"verdict": "normal"}, format="json").status_code == 403
    assert dave_api.post(url, {"verdict": "normal"}, format="json").status_code == 404
    assert not Review.objects.exists()
    assert alice_api.post(url, {"verdict": "anomaly"}, format="json").status_code == 201


def test_bad_verdict_is_refused(trained, charlie_api):
    _, data = trained
    prediction = Prediction.objects.get(image=data["test_defect"][0])
    response = charlie_api.post(f"/api/predictions/{prediction.pk}/review", {"verdict": "maybe"}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("verdict")
    assert not Review.objects.exists()
    assert Image.objects.get(pk=prediction.image_id).state == "anomalous"

"""Model versions: activation (one active per project, rollback) and thresholds (re-flagging)."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from inspection.models import ModelVersion, Prediction
from projects.models import AuditEvent, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_version(trained, project, alice, run_job_now):
    from inspection.services.training import training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"seed": 1}))
    return ModelVersion.objects.get(job=job)


def test_activation_keeps_exactly_one_active_and_rolls_back(trained, second_version, alice_api, run_job_now):
    first, _ = trained
    response = alice_api.post(f"/api/model-versions/{second_version.pk}/activate")
    assert response.status_code == 200 and response.json()["is_active"]
    assert list(ModelVersion.objects.filter(is_active=True)) == [second_version]
    # Activating fills the review queue: a job predicts the images this version has not scored yet.
    job = Job.objects.filter(kind="inference").latest("created_at")
    assert job.params == {"model_version": second_version.pk, "image_ids": None, "only_missing": True, "reason": "manual"}
    assert run_job_now(job).result["predicted"] == 11

    alice_api.post(f"/api/model-versions/{first.pk}/activate")  # rollback
    assert list(ModelVersion.objects.filter(is_active=True)) == [first]
    assert AuditEvent.objects.filter(verb="model_version.activate").count() == 3
    listing = alice_api.get(f"/api/projects/{first.project_id}/model-versions/").json()["results"]
    assert [(v["number"], v["is_active"]) for v in listing] == [(2, False), (1, True)]
    assert all("image_auroc" in v["metrics"] for v in listing)  # side by side


def test_the_database_refuses_two_active_versions(trained, second_version):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second_version.pk).update(is_active=True)


def test_threshold_change_reflags_every_prediction_of_the_version(trained, alice_api):
    model_version, data = trained
    url = f"/api/model-versions/{model_version.pk}/"
    assert Prediction.objects.filter(model_version=model_version, flagged=True).count() == 3

    regions_before = dict(Prediction.objects.values_list("pk", "polygons"))
    response = alice_api.patch(url, {"threshold": 0.0}, format="json")
    assert response.status_code == 200 and response.json()["threshold"] == 0.0
    assert response.json()["threshold_policy"] == "manual"
    assert Prediction.objects.filter(model_version=model_version, flagged=False).count() == 0
    # The image threshold flags; the regions stay as the region threshold drew them.
    assert dict(Prediction.objects.values_list("pk", "polygons")) == regions_before

    response = alice_api.patch(url, {"region_threshold": 0.0}, format="json")
    assert response.status_code == 200 and response.json()["region_threshold"] == 0.0
    assert response.json()["region_threshold_policy"] == "manual" and response.json()["threshold"] == 0.0
    normal = Prediction.objects.get(image=data["train"][0])
    assert normal.polygons  # every pixel above a zero region threshold: the region covers the image

    alice_api.patch(url, {"threshold": 10.0, "region_threshold": 10.0}, format="json")
    assert not Prediction.objects.filter(flagged=True).exists()
    assert not Prediction.objects.exclude(polygons=[]).exists()
    assert AuditEvent.objects.filter(verb="model_version.threshold").count() == 3
    assert alice_api.patch(url, {}, format="json").status_code == 400


@pytest.mark.parametrize("bad", ["high", None, "nan", "Infinity"])
def test_bad_thresholds_are_refused(trained, alice_api, bad):
    model_version, _ = trained
    response = alice_api.patch(f"/api/model-versions/{model_version.pk}/", {"threshold": bad}, format="json")
    assert response.status_code == 400 and "threshold" in response.json()["error"]
    model_version.refresh_from_db()
    assert model_version.threshold_policy != "manual"


@pytest.mark.parametrize("persona, status", [("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_activate_and_set_thresholds(trained, second_version, personas_api, persona, status):
    client = personas_api[persona]
    assert client.post(f"/api/model-versions/{second_version.pk}/activate").status_code == status
    assert client.patch(f"/api/model-versions/{second_version.pk}/", {"threshold": 0.1}, format="json").status_code == status
    second_version.refresh_from_db()
    assert not second_version.is_active and second_version.threshold != 0.1


def test_members_read_model_versions_outsiders_do_not(trained, bob_api, charlie_api, dave_api):
    model_version, _ = trained
    assert bob_api.get(f"/api/model-versions/{model_version.pk}/").status_code == 200
    assert charlie_api.get(f"/api/projects/{model_version.project_id}/model-versions/").status_code == 200
    assert dave_api.get(f"/api/model-versions/{model_version.pk}/").status_code == 404
    assert dave_api.get(f"/api/projects/{model_version.project_id}/model-versions/").status_code == 404

"""Inference: predictions per (image, model version), heatmaps, automatic prediction of uploads."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from inspection.heatmaps import decode_heatmap, encode_heatmap
from inspection.models import Prediction
from projects.models import Job

pytestmark = pytest.mark.django_db


def test_heatmap_png_round_trips_within_quantisation():
    anomaly_map = np.linspace(-1.0, 3.0, 64 * 32, dtype=np.float32).reshape(32, 64)
    png, vmin, vmax = encode_heatmap(anomaly_map)
    assert (vmin, vmax) == (-1.0, 3.0)
    restored = decode_heatmap(png, vmin, vmax)
    assert np.abs(restored - anomaly_map).max() <= (vmax - vmin) / 255 / 2 + 1e-6
    flat_png, low, high = encode_heatmap(np.full((4, 4), 2.0))
    assert low == high == 2.0 and np.all(decode_heatmap(flat_png, low, high) == 2.0)


def test_activation_predicts_every_image_and_flags_the_defects(trained, alice_api):
    model_version, data = trained
    predictions = Prediction.objects.filter(model_version=model_version)
    assert predictions.count() == 11
    flagged_images = set(predictions.filter(flagged=True).values_list("image_id", flat=True))
    assert flagged_images == {i.pk for i in data["test_defect"]}

    prediction = predictions.get(image=data["test_defect"][0])
    body = alice_api.get(f"/api/predictions/{prediction.pk}/").json()
    assert body["flagged"] and body["score"] > body["threshold"] == pytest.approx(model_version.threshold)
    assert body["heatmap_range"]["max"] == pytest.approx(prediction.heatmap_max)
    assert body["image"]["width"] == 48 and body["model_version"]["number"] == 1
    # The predicted region is the defect square (12..26), traced as a polygon.
    (polygon,) = body["polygons"]
    xs, ys = [p[0] for p in polygon["outer"]], [p[1] for p in polygon["outer"]]
    assert 9 <= min(xs) <= 14 and 24 <= max(xs) <= 29 and 9 <= min(ys) <= 14 and 24 <= max(ys) <= 29

    response = alice_api.get(body["heatmap_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    heatmap = PILImage.open(io.BytesIO(response.content))
    assert heatmap.size == (48, 48) and heatmap.mode == "L"
    assert alice_api.get(body["heatmap_url"], HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_rerunning_inference_overwrites_instead_of_duplicating(trained, project, alice_api, run_job_now):
    model_version, data = trained
    before = dict(Prediction.objects.values_list("image_id", "pk"))
    response = alice_api.post(f"/api/projects/{project.pk}/inference-jobs/", {}, format="json")
    assert response.status_code == 201
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded" and job.result == {"model_version": model_version.pk, "predicted": 11, "flagged": 3}
    assert dict(Prediction.objects.values_list("image_id", "pk")) == before


def test_batch_over_chosen_images(trained, project, alice_api, run_job_now):
    _, data = trained
    chosen = [data["train"][0].pk, data["test_defect"][1].pk]
    response = alice_api.post(f"/api/projects/{project.pk}/inference-jobs/", {"image_ids": chosen}, format="json")
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.result["predicted"] == 2 and job.result["flagged"] == 1


def test_inference_requests_are_checked(project, dataset, other_project, alice_api, bob_api, charlie_api):
    url = f"/api/projects/{project.pk}/inference-jobs/"
    response = alice_api.post(url, {}, format="json")
    assert response.status_code == 400 and "no active model" in response.json()["error"]
    assert bob_api.post(url, {}, format="json").status_code == 403
    assert charlie_api.post(url, {}, format="json").status_code == 403
    assert not Job.objects.exists()


def test_unknown_images_are_refused(trained, project, other_project, alice_api, image_factory):
    (foreign,) = image_factory(other_project)
    response = alice_api.post(f"/api/projects/{project.pk}/inference-jobs/", {"image_ids": [foreign.pk]}, format="json")
    assert response.status_code == 400 and response.json()["details"]["missing"] == [foreign.pk]


def test_new_uploads_are_predicted_with_the_active_model(trained, project, upload, settings, django_capture_on_commit_callbacks):
    model_version, _ = trained
    import inspection.tasks  # noqa: F401  (registers the tasks eager mode looks up)

    settings.CELERY_TASK_ALWAYS_EAGER = True  # the queued job runs in this process when the upload commits
    with django_capture_on_commit_callbacks(execute=True):
        (image,) = upload(project, [999], defect=True, split="unassigned", state="unlabeled")
    job = Job.objects.filter(kind="inference").latest("created_at")
    assert job.params["image_ids"] == [image.pk] and job.params["reason"] == "upload"
    assert job.status == "succeeded"
    assert Prediction.objects.get(image=image, model_version=model_version).flagged


def test_uploads_without_an_active_model_are_not_predicted(project, dataset, upload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(project, [998])
    assert not Job.objects.filter(kind="inference").exists()


def test_images_list_their_predictions(trained, alice_api, dave_api):
    _, data = trained
    image = data["test_defect"][0]
    body = alice_api.get(f"/api/images/{image.pk}/predictions/").json()
    assert len(body) == 1 and body[0]["flagged"] and body[0]["reviewed"] is False
    assert dave_api.get(f"/api/images/{image.pk}/predictions/").status_code == 404
    assert dave_api.get(f"/api/predictions/{body[0]['id']}/").status_code == 404
    assert dave_api.get(f"/api/predictions/{body[0]['id']}/heatmap.png").status_code == 404

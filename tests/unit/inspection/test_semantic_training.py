"""Training a semantic (road-scene) pipeline on the platform: class-index masks in, class maps and
road-scene metrics out."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from inspection.models import ModelVersion, Prediction
from projects.models import Job
from tests.road_scenes import road_scene_project

pytestmark = pytest.mark.django_db

URL = "/api/projects/{}/training-jobs/"
TINY = {"network": "enet", "image_size": 64, "image_height": 64, "max_steps": 3, "batch_size": 4, "warmup_steps": 1,
        "val_every": 3}


def test_semantic_training_without_class_masks_is_refused_and_creates_nothing(alice_api, project, dataset):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "seg_ood", "config": TINY}, format="json")

    assert response.status_code == 400
    body = str(response.json())
    assert "class masks" in body and "road-scene" in body
    assert not Job.objects.filter(project=project).exists()


def test_config_defaults_come_from_the_project_classes(alice_api, project, alice):
    road_scene_project(project=project, actor=alice, splits={"train": 2})
    response = alice_api.post(URL.format(project.pk), {"pipeline": "seg_ood", "config": TINY}, format="json")

    assert response.status_code == 201, response.json()
    config = Job.objects.get(pk=response.json()["id"]).params["config"]
    assert (config["num_classes"], config["void_index"], config["unknown_classes"]) == (4, 255, [])


def test_a_road_scene_model_learns_classes_and_stores_class_maps_and_road_metrics(alice_api, project, alice, run_job_now):
    data = road_scene_project(project=project, actor=alice, splits={"train": 6, "test": 4})
    config = {**TINY, "unknown_classes": [data["classes"]["object"].index]}
    response = alice_api.post(URL.format(project.pk), {"pipeline": "seg_ood", "config": config}, format="json")
    assert response.status_code == 201, response.json()

    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    model_version = ModelVersion.objects.get(job=job)
    metrics = model_version.metrics
    known = [c.index for name, c in data["classes"].items() if name != "object"]
    assert sorted(metrics["class_iou"]) == sorted(str(i) for i in known)
    assert 0.0 <= metrics["miou"] <= 1.0
    assert metrics["anomaly_auprc"] is not None and 0.0 <= metrics["anomaly_fpr95"] <= 1.0
    curve = model_version.curves["anomaly_pr"]
    assert len(curve["recall"]) == len(curve["precision"]) >= 2

    inference = alice_api.post(f"/api/projects/{project.pk}/inference-jobs/",
                               {"model_version": model_version.pk}, format="json")
    assert inference.status_code == 201, inference.json()
    assert run_job_now(Job.objects.get(pk=inference.json()["id"])).status == "succeeded"
    prediction = Prediction.objects.filter(model_version=model_version).first()
    detail = alice_api.get(f"/api/predictions/{prediction.pk}/").json()
    assert detail["class_map_url"] == f"/api/predictions/{prediction.pk}/class-map.png"
    png = alice_api.get(detail["class_map_url"])
    assert png.status_code == 200
    class_map = np.asarray(PILImage.open(io.BytesIO(b"".join(png.streaming_content) if png.streaming else png.content)))
    assert class_map.shape == (64, 64) and set(np.unique(class_map)) <= set(known)


def test_binary_predictions_have_no_class_map(alice_api, project, dataset, run_job_now):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "test-meandiff", "config": {"image_size": 48}}, format="json")
    model_version = ModelVersion.objects.get(job=run_job_now(Job.objects.get(pk=response.json()["id"])))
    job = alice_api.post(f"/api/projects/{project.pk}/inference-jobs/", {"model_version": model_version.pk}, format="json")
    run_job_now(Job.objects.get(pk=job.json()["id"]))
    prediction = Prediction.objects.filter(model_version=model_version).first()
    assert alice_api.get(f"/api/predictions/{prediction.pk}/").json()["class_map_url"] is None
    assert alice_api.get(f"/api/predictions/{prediction.pk}/class-map.png").status_code == 404

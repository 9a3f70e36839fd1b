"""The inspection loop end to end: real Postgres, real Redis broker, a real Celery worker process.

Through the REST API: create a project, upload synthetic images (64x64), train
``patchcore`` and ``dfr``, poll the jobs, check the model versions, activate,
let the worker predict every image, review what it flagged and see the effects.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]

SIZE = 64


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def poll_job(client, job_id: int, worker, timeout: float = 150) -> dict:
    """Poll ``GET /api/jobs/{id}/`` as the UI does until the job is terminal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}/").json()
        if body["is_terminal"]:
            return body
        if worker.process.poll() is not None:
            raise AssertionError(f"worker died during job {job_id}:\n{worker.log()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s:\n{worker.log()[-4000:]}")


def upload(client, project_id: int, samples, **fields) -> list[int]:
    files = [SimpleUploadedFile(f"{s.name}.png", png_bytes(s.image), content_type="image/png") for s in samples]
    response = client.post(f"/api/projects/{project_id}/images/", {"files": files, **fields}, format="multipart")
    assert response.status_code == 201, response.json()
    return [image["id"] for image in response.json()["created"]]


def annotate(client, image_id: int, mask: np.ndarray) -> None:
    from ml.formats import mask_to_polygons

    polygons = [region.to_polygon() for region in mask_to_polygons(mask, min_area=4)]
    response = client.put(f"/api/images/{image_id}/annotations/", {"polygons": polygons, "version": 0}, format="json")
    assert response.status_code == 200, response.json()


@pytest.fixture
def inspection_project(api_for, staff_user, alice, charlie):
    """A project made through the API: 10 normal train images, 3 normal and 4 defective
    (annotated) test images; alice is its admin, charlie its inspector."""
    from ml.data.synthetic import generate

    erin = api_for(staff_user)
    project = erin.post("/api/projects/", {"name": "Synthetic plates", "image_size": SIZE}, format="json").json()
    for user, role in ((alice, "admin"), (charlie, "inspector")):
        assert erin.post(f"/api/projects/{project['id']}/members/", {"username": user.username, "role": role}, format="json").status_code == 201
    admin = api_for(alice)
    train = generate(10, 0, size=SIZE, seed=11)
    test = generate(3, 4, size=SIZE, seed=12)
    upload(admin, project["id"], train, split="train", state="normal")
    upload(admin, project["id"], test[:3], split="test", state="normal")
    defect_ids = upload(admin, project["id"], test[3:], split="test", state="anomalous")
    for image_id, sample in zip(defect_ids, test[3:]):
        annotate(admin, image_id, sample.mask)
    return {"id": project["id"], "defect_ids": set(defect_ids)}


def test_train_activate_predict_review(celery_worker, inspection_project, api_for, alice, charlie):
    from ml.data.synthetic import generate

    admin, inspector = api_for(alice), api_for(charlie)
    project_id = inspection_project["id"]

    # Train patchcore; the job is polled to success like the UI does.
    config = {"image_size": SIZE, "batch_size": 4, "coreset_ratio": 0.25}
    response = admin.post(f"/api/projects/{project_id}/training-jobs/", {"pipeline": "patchcore", "config": config}, format="json")
    assert response.status_code == 201, response.json()
    job = poll_job(admin, response.json()["id"], celery_worker)
    assert job["status"] == "succeeded", job["error"] + job["traceback"]
    assert any("features" in line for line in job["log"])
    version = admin.get(f"/api/model-versions/{job['model_version']}/").json()
    assert version["pipeline"] == "patchcore" and version["number"] == 1 and version["threshold"] > 0
    assert version["metrics"]["image_auroc"] >= 0.9 and version["metrics"]["pixel_auroc"] >= 0.9
    assert version["snapshot"]["summary"] == {"train_normal": 10, "evaluation_normal": 3, "evaluation_anomalous": 4}
    assert version["curves"]["image_roc"]["fpr"] and version["curves"]["image_histogram"]["edges"]

    # Activate: the worker predicts every image, and the flagged ones are the defective ones.
    assert admin.post(f"/api/model-versions/{version['id']}/activate").json()["is_active"]
    inference = admin.get(f"/api/projects/{project_id}/jobs/", {"kind": "inference"}).json()["results"][0]
    inference = poll_job(admin, inference["id"], celery_worker)
    assert inference["status"] == "succeeded" and inference["result"]["predicted"] == 17
    queue = inspector.get(f"/api/projects/{project_id}/review-queue/").json()
    assert queue["count"] == 17
    flagged = {item["image"]["id"] for item in queue["results"] if item["flagged"]}
    assert flagged and flagged <= inspection_project["defect_ids"]
    assert len(flagged) >= 3

    # New uploads are predicted automatically with the active model.
    fresh = generate(1, 1, size=SIZE, seed=13)
    normal_id, defect_id = upload(admin, project_id, fresh)
    deadline = time.monotonic() + 90
    while len(admin.get(f"/api/images/{defect_id}/predictions/").json()) + len(admin.get(f"/api/images/{normal_id}/predictions/").json()) < 2:
        assert time.monotonic() < deadline, celery_worker.log()[-4000:]
        time.sleep(0.5)
    (defect_prediction,) = admin.get(f"/api/images/{defect_id}/predictions/").json()
    (normal_prediction,) = admin.get(f"/api/images/{normal_id}/predictions/").json()
    assert defect_prediction["flagged"] and defect_prediction["polygons"] and not normal_prediction["flagged"]
    top = inspector.get(f"/api/projects/{project_id}/review-queue/", {"reviewed": "false", "flagged": "true"}).json()["results"]
    assert defect_prediction["id"] in [item["id"] for item in top]

    # Review: anomaly -> anomalous + draft annotation; normal -> a normal training image.
    assert inspector.post(f"/api/predictions/{defect_prediction['id']}/review", {"verdict": "anomaly"}, format="json").status_code == 201
    assert inspector.post(f"/api/predictions/{normal_prediction['id']}/review", {"verdict": "normal"}, format="json").status_code == 201
    assert admin.get(f"/api/images/{defect_id}/").json()["state"] == "anomalous"
    draft = admin.get(f"/api/images/{defect_id}/annotations/").json()
    assert draft["version"] == 1 and draft["polygons"]
    normal = admin.get(f"/api/images/{normal_id}/").json()
    assert (normal["state"], normal["split"]) == ("normal", "train")
    assert inspector.get(f"/api/projects/{project_id}/review-queue/", {"reviewed": "true"}).json()["count"] == 2

    # dfr trains on the same data (now 11 normal train images) to a second version beside the first.
    config = {"image_size": SIZE, "batch_size": 4, "max_steps": 6, "warmup_steps": 1}
    response = admin.post(f"/api/projects/{project_id}/training-jobs/", {"pipeline": "dfr", "config": config}, format="json")
    job = poll_job(admin, response.json()["id"], celery_worker)
    assert job["status"] == "succeeded", job["error"] + job["traceback"]
    versions = admin.get(f"/api/projects/{project_id}/model-versions/").json()["results"]
    assert [(v["number"], v["pipeline"], v["is_active"]) for v in versions] == [(2, "dfr", False), (1, "patchcore", True)]
    assert versions[0]["snapshot"]["summary"]["train_normal"] == 11
    assert "image_auroc" in versions[0]["metrics"] and versions[0]["threshold"] > 0

"""Imports and exports through the API and a REAL Celery worker process (Redis broker, Postgres)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations.models import Annotation
from projects.models import Image, Job
from tests.factories import make_png, make_zip

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def _mask_png() -> bytes:
    mask = np.zeros((64, 64), np.uint8)
    mask[8:40, 8:40] = 255
    mask[16:32, 16:32] = 0  # a hole
    buffer = io.BytesIO()
    PILImage.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_import_runs_on_the_worker_and_an_export_of_it_downloads(celery_worker, alice_api, project):
    archive = make_zip({
        "plates/train/good/a.png": make_png(seed=1),
        "plates/train/good/b.png": make_png(seed=2),
        "plates/test/good/c.png": make_png(seed=3),
        "plates/test/dent/d.png": make_png(seed=4),
        "plates/ground_truth/dent/d_mask.png": _mask_png(),
    })
    response = alice_api.post(f"/api/projects/{project.pk}/imports/",
                              {"file": io.BytesIO(archive), "format": "mvtec"}, format="multipart")
    assert response.status_code == 202 and response.json()["status"] == "queued"

    job = celery_worker.wait_for_job(response.json()["id"])

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["images_created"] == 4 and job.result["polygons"] == 1 and job.progress == 1.0
    assert Image.objects.filter(project=project).count() == 4
    assert len(Annotation.objects.get(annotation_set__image__project=project).polygon["holes"]) == 1
    listed = alice_api.get(f"/api/projects/{project.pk}/imports/").json()["results"]
    assert [(j["id"], j["status"]) for j in listed] == [(job.pk, "succeeded")]

    export = alice_api.post(f"/api/projects/{project.pk}/exports/?format=mvtec").json()
    export_job = celery_worker.wait_for_job(export["id"])
    assert export_job.status == Job.Status.SUCCEEDED, export_job.error
    download = alice_api.get(f"/api/projects/{project.pk}/exports/{export_job.pk}/download")
    assert sorted(zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()) == [
        "ground_truth/dent/d_mask.png", "test/dent/d.png", "test/good/c.png", "train/good/a.png", "train/good/b.png",
    ]


def test_a_malformed_import_fails_on_the_worker_with_the_reason_and_saves_nothing(celery_worker, alice_api, project):
    archive = make_zip({"train/a.png": make_png(seed=1), "train/via_region_data.json": b'{"a": {"regions": []}}'})
    response = alice_api.post(f"/api/projects/{project.pk}/imports/",
                              {"file": io.BytesIO(archive), "format": "via"}, format="multipart")

    job = celery_worker.wait_for_job(response.json()["id"])

    assert job.status == Job.Status.FAILED
    assert "via_region_data.json" in job.error and "filename" in job.error
    assert not Image.objects.filter(project=project).exists()

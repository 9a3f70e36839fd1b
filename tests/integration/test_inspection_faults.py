"""Faults through a real worker process: cancelling a running training, and a worker killed mid-job."""
from __future__ import annotations

import time

import pytest

from tests.integration.test_inspection_loop import SIZE, poll_job, upload

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]

# Enough dfr steps that the job is still running when the test acts on it.
LONG_DFR = {"pipeline": "dfr", "config": {"image_size": SIZE, "batch_size": 4, "max_steps": 100000, "patience": 0}}


@pytest.fixture
def normal_project(project, alice_api):
    from ml.data.synthetic import generate

    upload(alice_api, project.pk, generate(6, 0, size=SIZE, seed=21), split="train", state="normal")
    return project


def wait_until_fitting(client, job_id: int, worker, timeout: float = 90) -> dict:
    """Wait until the job reports progress of its fit (past loading and feature setup)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}/").json()
        assert not body["is_terminal"], body
        if body["status"] == "running" and body["metrics_history"]:
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reported training progress:\n{worker.log()[-3000:]}")


def test_cancel_running_training_and_worker_killed_mid_job(celery_worker, normal_project, alice_api, settings):
    from inspection.models import ModelVersion
    from inspection.tasks import sweep_stale_jobs
    from projects.models import Job

    url = f"/api/projects/{normal_project.pk}/training-jobs/"

    # Cancel while running: the job stops within a few seconds, no model version.
    job_id = alice_api.post(url, LONG_DFR, format="json").json()["id"]
    wait_until_fitting(alice_api, job_id, celery_worker)
    response = alice_api.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"]
    asked = time.monotonic()
    job = poll_job(alice_api, job_id, celery_worker, timeout=30)
    assert job["status"] == "cancelled" and time.monotonic() - asked < 5
    assert not ModelVersion.objects.filter(job_id=job_id).exists()

    # Worker killed mid-job: the sweep (Celery beat in production) fails it as "worker lost".
    job_id = alice_api.post(url, LONG_DFR, format="json").json()["id"]
    wait_until_fitting(alice_api, job_id, celery_worker)
    settings.JOB_STALE_AFTER_SECONDS = 6  # the worker fixture beats every 2 s
    time.sleep(7)
    assert sweep_stale_jobs() == 0  # alive and beating: not swept, however long the fit is
    celery_worker.kill()
    assert Job.objects.get(pk=job_id).status == "running"
    deadline = time.monotonic() + 30
    while sweep_stale_jobs() == 0:
        assert time.monotonic() < deadline, "the dead worker's job was never swept"
        time.sleep(1)
    job = alice_api.get(f"/api/jobs/{job_id}/").json()
    assert job["status"] == "failed" and job["error"].startswith("worker lost")
    assert not ModelVersion.objects.filter(job_id=job_id).exists()

"""Jobs API: read, list with filters, cancel, and the stale-job sweep."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from projects.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_training(project, dataset, alice):
    from inspection.services.training import training_job_start

    return training_job_start(project=project, user=alice, pipeline="test-meandiff")


def test_job_detail_for_members_with_progress_and_new_log_lines(queued_training, run_job_now, bob_api, dave_api):
    job = run_job_now(queued_training)
    body = bob_api.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["is_terminal"] and body["progress"] == 1.0
    assert body["kind"] == "training" and body["requested_by"] == "alice" and body["model_version"]
    assert body["log_count"] == len(body["log"]) > 3
    tail = bob_api.get(f"/api/jobs/{job.pk}/", {"log_from": body["log_count"] - 1}).json()
    assert tail["log"] == body["log"][-1:]
    assert any(point.get("loss") for point in body["metrics_history"])
    assert dave_api.get(f"/api/jobs/{job.pk}/").status_code == 404


def test_project_jobs_list_filters_by_kind_and_status(queued_training, project, alice_api, run_job_now):
    run_job_now(queued_training)
    url = f"/api/projects/{project.pk}/jobs/"
    assert alice_api.get(url).json()["count"] == 1
    assert alice_api.get(url, {"kind": "training", "status": "succeeded"}).json()["count"] == 1
    assert alice_api.get(url, {"kind": "inference"}).json()["count"] == 0
    assert alice_api.get(url, {"status": "exploded"}).status_code == 400


def test_cancelling_a_queued_job_is_immediate_and_final(queued_training, alice_api, run_job_now):
    response = alice_api.post(f"/api/jobs/{queued_training.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job = run_job_now(queued_training)  # the task arrives later and finds nothing to do
    assert job.status == "cancelled"
    again = alice_api.post(f"/api/jobs/{job.pk}/cancel")
    assert again.status_code == 409


@pytest.mark.parametrize("persona, status", [("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_cancel(queued_training, personas_api, persona, status):
    assert personas_api[persona].post(f"/api/jobs/{queued_training.pk}/cancel").status_code == status
    queued_training.refresh_from_db()
    assert queued_training.status == "queued"


def test_sweep_fails_running_jobs_whose_heartbeat_stopped(queued_training, project, alice):
    from inspection.tasks import sweep_stale_jobs
    from projects.jobs import job_claim

    job = job_claim(queued_training.pk)
    assert sweep_stale_jobs() == 0  # fresh heartbeat
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert sweep_stale_jobs() == 1
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("worker lost")


def test_failed_job_shows_its_error_to_members_and_the_traceback_to_admins(project, dataset, alice, alice_api, charlie_api, run_job_now):
    from inspection.services.training import training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"fail_at_step": 0}))
    as_admin = alice_api.get(f"/api/jobs/{job.pk}/").json()
    as_inspector = charlie_api.get(f"/api/jobs/{job.pk}/").json()
    assert as_admin["status"] == as_inspector["status"] == "failed"
    assert "simulated failure" in as_inspector["error"] and "simulated failure" in as_admin["error"]
    assert "Traceback" in as_admin["traceback"] and as_inspector["traceback"] == ""

"""The job runner through a real Celery worker process on Redis and Postgres."""
from __future__ import annotations

import time

import pytest

from projects.jobs import job_cancel, job_create, jobs_sweep_stale
from projects.models import Job

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def _start(project, alice, **params):
    return job_create(kind="import", project=project, requested_by=alice, task_name="tests.worker_tasks.run_steps",
                      params=params)


def _wait_status(job, status, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == status:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} still {job.status}, expected {status}")


def test_worker_runs_a_job_to_success_and_a_failing_one_to_failed(celery_worker, project, alice):
    ok = _start(project, alice, steps=3)
    bad = _start(project, alice, steps=3, fail_at=1)
    ok = celery_worker.wait_for_job(ok.pk)
    bad = celery_worker.wait_for_job(bad.pk)
    assert ok.status == Job.Status.SUCCEEDED and ok.result == {"steps": 3} and ok.progress == 1.0
    assert [point["step"] for point in ok.metrics_history] == [0, 1, 2]
    assert bad.status == Job.Status.FAILED and bad.error == "step 1 failed on purpose"


def test_cancel_stops_a_running_job(celery_worker, project, alice):
    job = _start(project, alice, steps=200, sleep=0.1)
    _wait_status(job, Job.Status.RUNNING)
    job_cancel(job=job, by=alice)
    job = celery_worker.wait_for_job(job.pk)
    assert job.status == Job.Status.CANCELLED
    assert job.progress < 1.0


def test_a_killed_worker_leaves_a_job_that_the_sweep_marks_failed(celery_worker, project, alice):
    job = _start(project, alice, steps=600, sleep=0.1)
    _wait_status(job, Job.Status.RUNNING)
    celery_worker.kill()
    time.sleep(3)  # the worker's heartbeat interval is 2 s in tests
    assert jobs_sweep_stale(2) == 1
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("worker lost")

"""Faults through real processes: the broker stopped before and during a job, the database
connection dropped during a training (a full disk: test_jobs_full_disk.py).

Each test runs its OWN redis-server on a free port (the shared one is never stopped) and a
real Celery worker on it; Postgres faults terminate only the worker's connections to this
run's test database (the shared server keeps running). What must hold: the API answers
with the JSON envelope, every job ends in a terminal state with a reason, nothing is half
saved. (A worker SIGKILLed mid-job: tests/integration/test_platform_jobs.py and
test_inspection_faults.py.)
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from projects.models import Job
from tests.factories import make_png

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


class OwnRedis:
    """A redis-server process of this test alone (no persistence), stoppable at will."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """Stop it hard, as a crashed or unplugged broker."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path, settings):
    redis = OwnRedis(tmp_path)
    redis.start()
    settings.CELERY_BROKER_URL = redis.url
    yield redis
    redis.kill()


@pytest.fixture
def celery_worker_env(own_redis):
    return {"CELERY_BROKER_URL": own_redis.url}


def _assert_envelope(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error", "details"}, body
    return body


def _upload(client, project, n: int, size: int = 48, **fields) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile(f"img{i}.png", make_png(size, size, seed=100 + i)) for i in range(n)]
    response = client.post(f"/api/projects/{project.pk}/images/", {"files": files, **fields}, format="multipart")
    assert response.status_code == 201, response.json()


def test_broker_stopped_before_a_job_is_launched_answers_503_and_queues_nothing(own_redis, celery_worker, project, alice_api):
    _upload(alice_api, project, 3, split="train", state="normal")
    own_redis.kill()
    before = Job.objects.count()
    started = time.monotonic()
    body = _assert_envelope(alice_api.post(f"/api/projects/{project.pk}/training-jobs/", {"pipeline": "patchcore"},
                                           format="json"), 503)
    assert "broker" in body["error"] and time.monotonic() - started < 10
    _assert_envelope(alice_api.post(f"/api/projects/{project.pk}/exports/", {"format": "mvtec"}, format="json"), 503)
    assert Job.objects.count() == before  # nothing queued that could never run
    assert alice_api.get(f"/api/projects/{project.pk}/jobs/").status_code == 200  # reads still answer

    # The broker is back: the same request queues a job that the worker (reconnected) runs.
    own_redis.start()
    response = alice_api.post(f"/api/projects/{project.pk}/exports/", {"format": "mvtec"}, format="json")
    assert response.status_code == 202, response.json()
    job = celery_worker.wait_for_job(response.json()["id"], timeout=120)
    assert job.status == "succeeded", job.error


def test_broker_stopped_during_a_job_the_job_still_ends_terminal(own_redis, celery_worker, project, alice):
    from projects.jobs import job_create

    job = job_create(kind="import", project=project, requested_by=alice, task_name="tests.worker_tasks.run_steps",
                     params={"steps": 30, "sleep": 0.1})
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).status != "running":
        assert time.monotonic() < deadline, celery_worker.log()[-3000:]
        time.sleep(0.05)
    own_redis.kill()
    job = celery_worker.wait_for_job(job.pk, timeout=60)
    # Job state lives in the database, not in the broker: the work finishes and says so.
    assert job.status == "succeeded" and job.result == {"steps": 30}


def _terminate_worker_connections() -> int:
    """pg_terminate_backend on every other session of this run's test database (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_database_connection_dropped_during_a_training_fails_it_with_the_reason(celery_worker, project, alice_api):
    from inspection.models import ModelVersion
    from tests.integration.test_inspection_faults import wait_until_fitting

    _upload(alice_api, project, 6, size=64, split="train", state="normal")
    long_dfr = {"pipeline": "dfr", "config": {"image_size": 64, "batch_size": 4, "max_steps": 100000, "patience": 0}}
    response = alice_api.post(f"/api/projects/{project.pk}/training-jobs/", long_dfr, format="json")
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    wait_until_fitting(alice_api, job_id, celery_worker)
    assert _terminate_worker_connections() >= 1
    job = celery_worker.wait_for_job(job_id, timeout=60)  # not left for the stale-heartbeat sweep
    assert job.status == "failed" and "OperationalError" in job.error, job.error
    assert not ModelVersion.objects.filter(job_id=job_id).exists()
    body = alice_api.get(f"/api/jobs/{job_id}/").json()
    assert body["status"] == "failed" and body["error"] == job.error

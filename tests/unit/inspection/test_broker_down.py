"""The job queue (broker) unreachable: requests that start a job answer 503 with the JSON
envelope and save nothing; the outbox sweep delivers or fails queued jobs; retraining does
not wait on jobs the sweeps will fail.

The broker here is a real Redis URL on a port where nothing listens (the connection is
refused), the way a stopped Redis looks to the web process.
"""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from inspection.models import ModelVersion, Prediction
from projects.models import AuditEvent, Image, Job

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.JOB_BROKER_TIMEOUT_SECONDS = 1


def _assert_503(response):
    assert response.status_code == 503, response.content
    body = response.json()
    assert set(body) == {"error", "details"} and "broker" in body["error"]
    assert body["details"] == {"reason": "broker_unavailable"}


def test_job_starting_requests_answer_503_and_save_nothing(trained, project, alice_api, second_model_version, broker_down, png):
    active, _ = trained
    jobs_before = Job.objects.count()
    audit_before = AuditEvent.objects.count()

    _assert_503(alice_api.post(f"/api/projects/{project.pk}/training-jobs/", {"pipeline": "test-meandiff"}, format="json"))
    _assert_503(alice_api.post(f"/api/projects/{project.pk}/inference-jobs/", {}, format="json"))
    _assert_503(alice_api.post(f"/api/projects/{project.pk}/exports/", {"format": "coco"}, format="json"))
    _assert_503(alice_api.post(f"/api/model-versions/{second_model_version.pk}/activate"))
    # An upload into a project with an active model makes an inference job: refused whole.
    images_before = Image.objects.count()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = alice_api.post(f"/api/projects/{project.pk}/images/", {"files": [SimpleUploadedFile("new.png", png(seed=99))]},
                            format="multipart")
    _assert_503(upload)

    assert Job.objects.count() == jobs_before
    assert AuditEvent.objects.count() == audit_before
    assert Image.objects.count() == images_before
    active.refresh_from_db()
    second_model_version.refresh_from_db()
    assert active.is_active and not second_model_version.is_active


def test_threshold_change_stands_without_the_broker_and_its_redraw_waits_in_the_outbox(trained, alice_api, broker_down, settings):
    from projects.jobs import jobs_sweep_queued

    model_version, _ = trained
    response = alice_api.patch(f"/api/model-versions/{model_version.pk}/", {"threshold": 0.0, "region_threshold": 0.0},
                               format="json")
    assert response.status_code == 200
    assert not Prediction.objects.filter(model_version=model_version, flagged=False).exists()
    job = Job.objects.get(kind="redraw")
    assert job.status == "queued" and job.enqueued_at is None
    # Still down: the sweep keeps it for later; past the limit it fails it with the reason.
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert jobs_sweep_queued(resend_after_s=60, max_age_s=3600) == {"resent": 0, "failed": 0}
    assert jobs_sweep_queued(resend_after_s=60, max_age_s=120) == {"resent": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == "failed" and "not started within 120 s" in job.error and job.finished_at


def test_the_sweep_sends_jobs_whose_message_never_left_once_the_broker_answers(trained, alice, settings, run_job_now):
    """In these tests the broker is the filesystem transport: reachable."""
    from projects.jobs import jobs_sweep_queued

    model_version, _ = trained
    fresh = Job.objects.create(kind="redraw", project=model_version.project, task_name="inspection.tasks.redraw_predictions",
                               params={"model_version": model_version.pk, "region_threshold": model_version.region_threshold})
    old = Job.objects.create(kind="redraw", project=model_version.project, task_name="inspection.tasks.redraw_predictions",
                             params={"model_version": model_version.pk, "region_threshold": model_version.region_threshold})
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert jobs_sweep_queued(resend_after_s=60, max_age_s=3600) == {"resent": 1, "failed": 0}
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.enqueued_at is not None and fresh.enqueued_at is None  # a fresh one may still be sent by its request
    assert old.status == "queued"
    assert run_job_now(old).status == "succeeded"


def test_retraining_does_not_wait_on_a_job_the_sweeps_will_fail(trained, project, alice_api, settings):
    from inspection.services.retraining import retrain_check
    from projects.jobs import job_claim

    settings.JOB_STALE_AFTER_SECONDS = 60
    settings.JOB_QUEUED_MAX_SECONDS = 600
    alice_api.put(f"/api/projects/{project.pk}/retrain-policy/", {"enabled": True, "min_new_labels": 1, "cooldown_minutes": 0},
                  format="json")
    from inspection.models import Review

    prediction = Prediction.objects.first()
    Review.objects.create(prediction=prediction, reviewer=None, verdict="unsure")

    stuck = Job.objects.create(kind="training", project=project, task_name="inspection.tasks.train_model")
    assert retrain_check(project=project) is None  # a fresh queued training: wait for it
    Job.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))
    Review.objects.create(prediction=prediction, reviewer=None, verdict="unsure")
    started = retrain_check(project=project)
    assert started is not None and started.status == "queued"

    # A running training whose worker died (heartbeat stopped) does not hold it back either.
    Job.objects.filter(pk=started.pk).update(created_at=timezone.now() - timedelta(hours=1))
    running = job_claim(started.pk)
    assert retrain_check(project=project) is None
    Job.objects.filter(pk=running.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    Review.objects.create(prediction=prediction, reviewer=None, verdict="unsure")
    assert retrain_check(project=project) is not None


@pytest.fixture
def second_model_version(trained, project, alice, run_job_now):
    from inspection.services.training import training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"seed": 1}))
    return ModelVersion.objects.get(job=job)


def test_a_send_that_fails_after_commit_leaves_an_outbox_row_within_about_a_second(project, alice, broker_down,
                                                                                  django_capture_on_commit_callbacks):
    import time

    from projects.jobs import job_create

    with django_capture_on_commit_callbacks(execute=True):
        started = time.monotonic()
        job = job_create(kind="redraw", project=project, requested_by=alice, task_name="inspection.tasks.redraw_predictions",
                         params={"model_version": 0, "region_threshold": 0.0}, broker="outbox")
    assert time.monotonic() - started < 5  # the short retry, not Celery's default of minutes
    job.refresh_from_db()
    assert job.status == "queued" and job.enqueued_at is None  # the sweep will send it or fail it

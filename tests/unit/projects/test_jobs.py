"""The job runner: every job ends terminal, status never moves back, progress is throttled, cancel works."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from projects.errors import ApplicationError, Conflict
from projects.jobs import JobCancelled, JobContext, job_cancel, job_claim, job_create, jobs_sweep_stale, run_job
from projects.models import AuditEvent, Job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_heartbeat_thread(settings):
    settings.JOB_HEARTBEAT_SECONDS = 0


@pytest.fixture
def job(project, alice):
    return Job.objects.create(project=project, kind=Job.Kind.IMPORT, requested_by=alice)


def test_successful_work_stores_result_and_log(job):
    def work(ctx):
        ctx.progress("reading", 0.5)
        ctx.log("read 3 images")
        return {"images": 3}

    finished = run_job(job.pk, work)
    assert finished.status == Job.Status.SUCCEEDED
    assert finished.result == {"images": 3}
    assert finished.progress == 1.0
    assert finished.attempts == 1
    assert finished.started_at and finished.finished_at and finished.heartbeat_at
    assert any("read 3 images" in line for line in finished.log)


def test_exception_fails_the_job_with_error_and_traceback(job):
    def work(ctx):
        raise ValueError("disk on fire")

    finished = run_job(job.pk, work)
    assert finished.status == Job.Status.FAILED
    assert finished.error == "ValueError: disk on fire"
    assert "Traceback" in finished.traceback and "disk on fire" in finished.traceback


def test_application_error_message_is_the_job_error(job):
    def work(ctx):
        raise ApplicationError("annotations.json: not valid JSON")

    assert run_job(job.pk, work).error == "annotations.json: not valid JSON"


def test_result_that_is_not_json_fails_instead_of_hanging_in_running(job):
    finished = run_job(job.pk, lambda ctx: {"when": object()})
    assert finished.status == Job.Status.FAILED
    assert "could not store the result" in finished.error


def test_a_second_delivery_is_a_no_op(job):
    calls = []
    run_job(job.pk, lambda ctx: calls.append(1) or {"n": 1})
    assert run_job(job.pk, lambda ctx: calls.append(2) or {"n": 2}) is None
    job.refresh_from_db()
    assert calls == [1] and job.result == {"n": 1} and job.attempts == 1


def test_claim_is_conditional(job):
    assert job_claim(job.pk).status == Job.Status.RUNNING
    assert job_claim(job.pk) is None
    assert run_job(job.pk, lambda ctx: {}) is None  # claimed elsewhere: not run here


def test_status_never_moves_back_from_terminal(job):
    def work(ctx):
        # Meanwhile the sweeper decided the worker was lost.
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="worker lost")
        return {"late": True}

    finished = run_job(job.pk, work)
    assert finished.status == Job.Status.FAILED and finished.error == "worker lost" and finished.result == {}


def test_progress_writes_are_throttled_and_estimate_eta(job):
    claimed = job_claim(job.pk)
    now = [100.0]
    ctx = JobContext(claimed, min_interval=1.0, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] += 0.05  # 100 reports in 5 seconds
        ctx.progress("training", step / 200, {"loss": 1.0 / step})
    assert 5 <= ctx.writes <= 7  # the first report, then about once a second
    job.refresh_from_db()
    assert job.stage == "training"
    assert 0.4 <= job.progress <= 0.5  # the last write, at most a second behind the last report
    assert 4.0 <= job.eta_seconds <= 7.0  # about half done after about 5 s
    # Every reported point is kept for the live curve, not only the written ones.
    losses = [point["loss"] for point in job.metrics_history]
    assert len(losses) >= 80 and losses == sorted(losses, reverse=True)


def test_stage_change_is_written_at_once(job):
    ctx = JobContext(job_claim(job.pk), min_interval=1000.0, clock=lambda: 5.0)
    ctx.progress("features", 0.1)
    ctx.progress("fit", 0.1)
    job.refresh_from_db()
    assert job.stage == "fit" and ctx.writes == 2


def test_cancel_of_a_queued_job_is_immediate_and_audited(job, alice):
    cancelled = job_cancel(job=job, by=alice)
    assert cancelled.status == Job.Status.CANCELLED and cancelled.finished_at
    assert run_job(job.pk, lambda ctx: {}) is None
    assert AuditEvent.objects.filter(verb="job.cancel", object_id=str(job.pk), actor=alice).exists()


def test_cancel_of_a_running_job_stops_it_at_the_next_progress(job, alice):
    def work(ctx):
        ctx.progress("training", 0.1)
        job_cancel(job=ctx.job, by=alice)
        ctx.min_interval = 0
        for epoch in range(100):
            ctx.progress("training", epoch / 100)
        return {"finished": True}

    finished = run_job(job.pk, work)
    assert finished.status == Job.Status.CANCELLED
    assert finished.result == {}


def test_job_cancelled_is_what_ml_pipelines_raise():
    from ml.base import Cancelled

    assert issubclass(JobCancelled, Cancelled)


def test_cancelling_a_finished_job_is_a_conflict(job, alice):
    run_job(job.pk, lambda ctx: {})
    with pytest.raises(Conflict, match="already succeeded"):
        job_cancel(job=job, by=alice)


def test_sweep_fails_running_jobs_with_a_stale_heartbeat(job, project):
    job_claim(job.pk)
    fresh = Job.objects.create(project=project, kind=Job.Kind.TRAINING)
    job_claim(fresh.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert jobs_sweep_stale(60) == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("worker lost")
    assert fresh.status == Job.Status.RUNNING


@celery_app.task(name="tests.unit.projects.echo_job")
def echo_job(job_id):
    return run_job(job_id, lambda ctx: {"echo": ctx.job.params["say"]})


def test_job_create_enqueues_after_commit(project, alice, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_create(kind="import", project=project, requested_by=alice, task_name="tests.unit.projects.echo_job",
                         params={"say": "hi"}, input_file=b"archive bytes")
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED  # nothing runs before commit
    assert job.input_file.read() == b"archive bytes"
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result == {"echo": "hi"}
    assert AuditEvent.objects.filter(verb="job.create", object_id=str(job.pk)).exists()


def test_unknown_kind_is_refused(project, alice):
    with pytest.raises(ApplicationError, match="unknown job kind"):
        job_create(kind="teleport", project=project, requested_by=alice, task_name="x")


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_keeps_a_silent_job_alive(job, settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.1
    beats = []

    def work(ctx):
        first = Job.objects.get(pk=job.pk).heartbeat_at
        time.sleep(0.5)
        beats.append((first, Job.objects.get(pk=job.pk).heartbeat_at))
        return {}

    assert run_job(job.pk, work).status == Job.Status.SUCCEEDED
    first, later = beats[0]
    assert later > first


def test_one_progress_bar_over_the_whole_job_never_restarts_per_stage(job):
    claimed = job_claim(job.pk)
    ctx = JobContext(claimed, min_interval=0.0)
    ctx.plan({"loading": 1, "fitting": 3})
    seen = []
    for stage in ("loading", "fitting"):
        for fraction in (0.0, 0.5, 1.0):
            ctx.progress(stage, fraction)
            job.refresh_from_db()
            seen.append((job.stage, round(job.progress, 3)))
    assert seen == [
        ("loading", 0.0), ("loading", 0.125), ("loading", 0.25),
        ("fitting", 0.25), ("fitting", 0.625), ("fitting", 1.0),
    ]
    # A stage outside the plan is named but holds the bar; a new plan continues from there.
    ctx.plan({"evaluating": 1})
    ctx.progress("evaluating", 0.0)
    job.refresh_from_db()
    assert job.progress == 1.0


def test_a_succeeded_job_shows_its_terminal_stage(job):
    finished = run_job(job.pk, lambda ctx: ctx.progress("evaluating", 0.5) or {"ok": True})
    assert finished.status == "succeeded" and finished.stage == "done" and finished.progress == 1.0

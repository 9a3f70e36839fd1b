"""The one job runner (STYLE.md "Jobs are rows", "Safe to run twice").

Every background job (import, export, training, inference) is a ``Job`` row
and runs through :func:`run_job`:

* :func:`job_create` inserts the row and, after the transaction commits, sends
  the Celery task named by the caller with the job id as its only argument.
  Row and message succeed or fail together from the caller's view: with
  ``broker="required"`` (requests) an unreachable broker is found before the
  row is written and the caller gets :class:`BrokerUnavailable` (503, nothing
  saved); a send that still fails after commit (and a short retry) leaves the
  row ``queued`` with ``enqueued_at`` empty, an outbox entry that
  :func:`jobs_sweep_queued` (beat) sends again, or fails with a reason once it
  is older than ``JOB_QUEUED_MAX_SECONDS``. No job stays queued forever.
* The task calls ``run_job(job_id, work)``. It claims the row with a
  conditional ``UPDATE ... WHERE status = 'queued'`` (a second delivery of the
  same task finds nothing to claim and returns), then calls ``work(ctx)``.
* Whatever ``work`` does, the job ends terminal: ``succeeded`` with the dict it
  returned as ``result``, ``failed`` with the error message and traceback, or
  ``cancelled``. Status only moves forward: every transition is a conditional
  update from the state it leaves.
* ``ctx.progress(stage, fraction, metrics)`` has the signature of
  ``ml.base.ProgressFn``; it writes at most about once a second, estimates the
  remaining time, refreshes the heartbeat and raises :class:`JobCancelled`
  (an ``ml.base.Cancelled``) once a cancel was requested.
* ``Job.progress`` is one bar over the whole job, never moving back: a work
  function may declare its stages with weights (``ctx.plan({...})``), and each
  stage's fraction fills its share; stages outside the plan keep the bar where
  it is. Without a plan, each new stage fills the rest of the bar from where it is.
* A heartbeat thread also refreshes ``heartbeat_at`` while ``work`` runs, so a
  silent but alive job is not mistaken for a dead one; :func:`jobs_sweep_stale`
  fails running jobs whose heartbeat stopped (the worker process died).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback as traceback_module
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ml.base import Cancelled
from projects.audit import audit_record
from projects.errors import ApplicationError, Conflict
from projects.models import Job, Project

logger = logging.getLogger(__name__)

LOG_MAX_LINES = 2000
METRICS_MAX_POINTS = 2000


class JobCancelled(Cancelled):
    """Raised inside a job's work when its cancel flag is set."""


class BrokerUnavailable(ApplicationError):
    """The job queue (the Celery broker) cannot be reached: the API answers 503."""

    status = 503


def _broker_is_real() -> bool:
    """False for eager mode and the in-process transports (nothing to reach)."""
    return not settings.CELERY_TASK_ALWAYS_EAGER and not settings.CELERY_BROKER_URL.startswith(("filesystem", "memory"))


def broker_check() -> None:
    """Raise :class:`BrokerUnavailable` unless the broker answers now (a fresh connection
    and, for Redis, a PING; a few milliseconds on a local network)."""
    if not _broker_is_real():
        return
    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=settings.JOB_BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("broker unreachable: %s", exc)
        raise BrokerUnavailable(
            "the job queue (broker) is unreachable; nothing was saved, try again in a moment",
            details={"reason": "broker_unavailable"},
        ) from None


def job_create(
    *,
    kind: str,
    project: Project,
    requested_by,
    task_name: str,
    params: dict[str, Any] | None = None,
    input_file: bytes | File | None = None,
    input_name: str = "input",
    broker: str = "required",
) -> Job:
    """Insert a queued job and send ``task_name(job.id)`` once the transaction commits.

    ``input_file`` (bytes or a file, e.g. an uploaded archive) is stored in the
    blob storage. Records a ``job.create`` audit event for ``requested_by``.
    ``broker="required"``: refuse with :class:`BrokerUnavailable` (503) before
    writing anything when the broker does not answer (requests, so that the
    caller's whole transaction rolls back); ``"outbox"``: write the job anyway
    and let :func:`jobs_sweep_queued` deliver it (work started by a job or by
    beat, where there is no one to answer 503 to).
    """
    if kind not in Job.Kind.values:
        raise ApplicationError(f"unknown job kind {kind!r}; known: {', '.join(Job.Kind.values)}")
    if broker not in ("required", "outbox"):
        raise ValueError(f"broker: expected 'required' or 'outbox', got {broker!r}")
    if broker == "required":
        broker_check()
    with transaction.atomic():
        job = Job(kind=kind, project=project, requested_by=requested_by, params=params or {}, task_name=task_name)
        if input_file is not None:
            content = input_file if isinstance(input_file, File) else ContentFile(input_file, name=input_name)
            job.input_file.save(input_name, content, save=False)
        job.save()
        audit_record(requested_by, "job.create", job, project, {"kind": kind, "task": task_name})
        transaction.on_commit(lambda: job_enqueue(job))
    return job


def job_enqueue(job: Job) -> bool:
    """Send the job's task (a short retry included) and stamp ``enqueued_at``; False when
    the broker could not be reached: the job stays queued for :func:`jobs_sweep_queued`."""
    from config.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        # Eager mode (a developer convenience): run in-process through the registered task.
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
        app.tasks[job.task_name].apply(args=[job.pk])
        return True
    try:
        if _broker_is_real():
            with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
                app.send_task(job.task_name, args=[job.pk], connection=conn, retry=True, retry_policy=ENQUEUE_RETRY)
        else:
            app.send_task(job.task_name, args=[job.pk])
    except Exception as exc:
        logger.warning("job %s: could not reach the broker (%s); the queued-job sweep will send it again", job.pk, exc)
        return False
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(enqueued_at=now)
    job.enqueued_at = now
    return True


# A short retry: the request that committed the job waits at most about a second.
ENQUEUE_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}


def job_claim(job_id: int) -> Job | None:
    """Move a queued job to running; None when it is not queued (already claimed,
    finished or cancelled), which makes a redelivered task a no-op."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        stage="starting",
    )
    if claimed != 1:
        return None
    return Job.objects.get(pk=job_id)


def _finish(job_id: int, status: str, **fields: Any) -> bool:
    """Running -> terminal, conditionally; False when the job had already left running.

    The work may have failed because the database connection broke (a restarted
    server, a terminated backend): the write is then retried once on a fresh
    connection, so the job still ends with its reason instead of waiting for the
    stale-heartbeat sweep.
    """

    def write() -> bool:
        return bool(
            Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                status=status, finished_at=timezone.now(), eta_seconds=None, **fields
            )
        )

    try:
        return write()
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        logger.warning("job %s: database connection lost; reconnecting to record its end", job_id)
        connection.close()
        return write()


class JobContext:
    """Handed to a job's work function: progress, log lines, cancellation.

    ``clock`` and ``min_interval`` exist so tests can drive the throttle.
    """

    def __init__(
        self,
        job: Job,
        *,
        min_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.min_interval = settings.JOB_PROGRESS_MIN_INTERVAL if min_interval is None else min_interval
        self._clock = clock
        self._last_write: float | None = None
        self._stage: str | None = None
        self._stage_started = clock()
        self._log: list[str] = list(job.log or [])
        self._metrics: list[dict[str, Any]] = list(job.metrics_history or [])
        self.writes = 0
        self._started = clock()
        self._plan: dict[str, tuple[float, float]] | None = None
        self._overall = 0.0
        self._span = (0.0, 1.0)  # share of the bar the current stage fills

    def plan(self, weights: dict[str, float]) -> None:
        """Declare the stages still to come, in order, with relative weights: stage k then fills
        its share of the rest of the bar (from where the bar is now)."""
        total = float(sum(weights.values())) or 1.0
        start, room = self._overall, 1.0 - self._overall
        self._plan, at = {}, start
        for name, weight in weights.items():
            share = room * float(weight) / total
            self._plan[name] = (at, at + share)
            at += share

    # --- public API for work functions ---------------------------------------
    def progress(self, stage: str, fraction: float, metrics: dict[str, float] | None = None) -> None:
        """Report ``fraction`` (0..1) of ``stage`` done; raises JobCancelled when cancelled."""
        now = self._clock()
        fraction = min(max(float(fraction), 0.0), 1.0)
        stage_changed = stage != self._stage
        if stage_changed:
            self._stage = stage
            self._stage_started = now
            self._log.append(f"{_stamp()} {stage}")
            self._span = self._stage_span(stage)
        lo, hi = self._span
        self._overall = max(self._overall, lo + (hi - lo) * fraction)
        if metrics:
            point = {"stage": stage, "fraction": round(fraction, 4)}
            point.update({k: _json_number(v) for k, v in metrics.items()})
            self._metrics.append(point)
        due = self._last_write is None or now - self._last_write >= self.min_interval
        if not (due or stage_changed or fraction >= 1.0):
            return
        elapsed = now - self._started
        overall = self._overall
        eta = elapsed * (1.0 - overall) / overall if overall > 0 and elapsed > 0 else None
        self._write(stage=stage, progress=overall, eta_seconds=eta)
        self._last_write = now
        self.check_cancelled()

    def _stage_span(self, stage: str) -> tuple[float, float]:
        if self._plan is not None:
            # A planned stage fills its share; one outside the plan holds the bar.
            lo, hi = self._plan.get(stage, (self._overall, self._overall))
            return max(lo, self._overall), max(hi, self._overall)
        return self._overall, 1.0

    def log(self, line: str) -> None:
        """Append a log line; it is written with the next progress write or at the end."""
        self.note(line)
        now = self._clock()
        if self._last_write is None or now - self._last_write >= self.min_interval:
            self._write()
            self._last_write = now

    def note(self, line: str) -> None:
        """Append a log line without writing (the runner's last words go with the final update)."""
        self._log.append(f"{_stamp()} {line}")

    def check_cancelled(self) -> None:
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled("cancelled on request")

    def save_output(self, data: bytes | File, name: str) -> None:
        """Store the job's output file (an export archive, for instance): bytes, or a file
        (on disk, stored in pieces without reading it whole)."""
        content = data if isinstance(data, File) else ContentFile(data, name=name)
        self.job.output_file.save(name, content, save=False)
        Job.objects.filter(pk=self.job.pk).update(output_file=self.job.output_file.name)

    # --- internals -------------------------------------------------------------
    def pending_fields(self) -> dict[str, Any]:
        return {"log": self._log[-LOG_MAX_LINES:], "metrics_history": self._metrics[-METRICS_MAX_POINTS:]}

    def _write(self, **fields: Any) -> None:
        fields.update(self.pending_fields())
        Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now(), **fields)
        self.writes += 1


def _stamp() -> str:
    return timezone.now().strftime("%H:%M:%S")


def _json_number(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if number == number and abs(number) != float("inf") else None


class _Heartbeat(threading.Thread):
    """Refreshes heartbeat_at every ``interval`` seconds while the work runs."""

    def __init__(self, job_id: int, interval: float) -> None:
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id = job_id
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:  # a lost beat only risks a false "worker lost"; never kill the job for it
                    logger.exception("heartbeat of job %s failed; reconnecting", self.job_id)
                    connection.close()  # a broken connection is replaced at the next beat
        finally:
            connection.close()


def run_job(job_id: int, work: Callable[[JobContext], dict[str, Any] | None]) -> Job | None:
    """Claim job ``job_id`` and run ``work(ctx)``; the job always ends terminal.

    Returns the final job row, or None when there was nothing to claim (already
    running elsewhere, finished, or cancelled while queued).
    """
    job = job_claim(job_id)
    if job is None:
        logger.info("job %s not claimable (not queued); nothing to do", job_id)
        return None
    ctx = JobContext(job)
    interval = settings.JOB_HEARTBEAT_SECONDS
    heartbeat = _Heartbeat(job_id, interval) if interval > 0 else None
    if heartbeat:
        heartbeat.start()
    try:
        result = work(ctx)
    except Cancelled:
        ctx.note("cancelled")
        _finish(job_id, Job.Status.CANCELLED, error="cancelled on request", **ctx.pending_fields())
    except ApplicationError as exc:
        ctx.note(f"failed: {exc.message}")
        _finish(job_id, Job.Status.FAILED, error=exc.message, traceback=traceback_module.format_exc(), **ctx.pending_fields())
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        ctx.note(f"failed: {exc}")
        _finish(
            job_id, Job.Status.FAILED, error=f"{type(exc).__name__}: {exc}",
            traceback=traceback_module.format_exc(), **ctx.pending_fields(),
        )
    except BaseException as exc:
        # Worker shutdown (SystemExit, KeyboardInterrupt): still leave a terminal row, then let it propagate.
        _finish(job_id, Job.Status.FAILED, error=f"worker stopped during the job ({type(exc).__name__})",
                traceback=traceback_module.format_exc(), **ctx.pending_fields())
        raise
    else:
        ctx.note("done")
        try:
            json.dumps(result or {})
        except (TypeError, ValueError) as exc:  # checked first: a failed UPDATE would poison an outer transaction
            logger.exception("job %s: could not store its result", job_id)
            _finish(job_id, Job.Status.FAILED, error=f"could not store the result: {exc}",
                    traceback=traceback_module.format_exc(), **ctx.pending_fields())
        else:
            _finish(job_id, Job.Status.SUCCEEDED, progress=1.0, stage="done", result=result or {}, **ctx.pending_fields())
    finally:
        if heartbeat:
            heartbeat.stopped.set()
            heartbeat.join(timeout=5)
    return Job.objects.get(pk=job_id)


def job_cancel(*, job: Job, by) -> Job:
    """Cancel: a queued job is cancelled at once; a running one gets its cancel
    flag set and stops at its next progress report. Finished jobs: 409."""
    with transaction.atomic():
        now = timezone.now()
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELLED, cancel_requested=True, finished_at=now, error="cancelled before it started"
        ):
            audit_record(by, "job.cancel", job, job.project, {"was": "queued"})
        elif Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(cancel_requested=True):
            audit_record(by, "job.cancel", job, job.project, {"was": "running"})
        else:
            job.refresh_from_db()
            raise Conflict(f"job {job.pk} already {job.status}", details={"status": job.status})
    job.refresh_from_db()
    return job


def jobs_sweep_queued(*, resend_after_s: float | None = None, max_age_s: float | None = None) -> dict[str, int]:
    """Outbox sweep (beat): deliver queued jobs whose message was never sent, and fail
    queued jobs that no worker started within ``max_age_s`` (a lost message, no worker
    for their queue, or a broker down for that long) with a reason.

    Returns ``{"resent": n, "failed": m}``. Sending twice is harmless: the runner
    claims a job with a conditional update, so a second message finds nothing to do.
    """
    resend_after_s = settings.JOB_RESEND_AFTER_SECONDS if resend_after_s is None else resend_after_s
    max_age_s = settings.JOB_QUEUED_MAX_SECONDS if max_age_s is None else max_age_s
    now = timezone.now()
    failed = Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=now - timedelta(seconds=max_age_s)).update(
        status=Job.Status.FAILED,
        finished_at=now,
        eta_seconds=None,
        error=f"not started within {int(max_age_s)} s: the job queue (broker) or the workers for it were unavailable",
    )
    resent = 0
    unsent = Job.objects.filter(
        status=Job.Status.QUEUED, enqueued_at__isnull=True, created_at__lt=now - timedelta(seconds=resend_after_s)
    ).exclude(task_name="")
    for job in unsent.order_by("created_at")[:500]:
        if not job_enqueue(job):
            break  # the broker is still down: the next sweep tries again
        resent += 1
    return {"resent": resent, "failed": failed}


def jobs_live_q() -> Q:
    """Queued or running jobs the sweeps will leave alone (a running one that beats, a
    queued one within its limit): what waits for a job to finish waits only for these."""
    now = timezone.now()
    beating = Q(status=Job.Status.RUNNING, heartbeat_at__gte=now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS))
    waiting = Q(status=Job.Status.QUEUED, created_at__gte=now - timedelta(seconds=settings.JOB_QUEUED_MAX_SECONDS))
    return beating | waiting


def jobs_sweep_stale(max_age_s: float | None = None) -> int:
    """Fail running jobs whose heartbeat is older than ``max_age_s`` (their worker
    died); returns how many. Wired to Celery beat by the inspection app."""
    max_age_s = settings.JOB_STALE_AFTER_SECONDS if max_age_s is None else max_age_s
    cutoff = timezone.now() - timedelta(seconds=max_age_s)
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        finished_at=timezone.now(),
        eta_seconds=None,
        error=f"worker lost: no heartbeat for more than {int(max_age_s)} s",
    )

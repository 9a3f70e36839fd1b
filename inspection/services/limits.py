"""Per-kind time limits of jobs, reported in words rather than as a Celery exception name."""
from __future__ import annotations

from typing import Any, Callable

from celery.exceptions import SoftTimeLimitExceeded

from projects.errors import ApplicationError
from projects.jobs import JobContext


def within_time_limit(work: Callable[[JobContext], Any], limit_s: int) -> Callable[[JobContext], Any]:
    """Wrap a job's work so Celery's soft time limit fails the job with a plain reason.

    The hard limit (a little later) kills the worker process; the stale-heartbeat
    sweep then fails the job as "worker lost".
    """

    def limited(ctx: JobContext) -> Any:
        try:
            return work(ctx)
        except SoftTimeLimitExceeded:
            raise ApplicationError(f"time limit exceeded: the job ran longer than {limit_s} s") from None

    return limited

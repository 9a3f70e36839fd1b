"""Tasks that only the test worker loads (``celery worker --include tests.worker_tasks``,
see the ``celery_worker`` fixture): exercise the job runner through a real worker."""
from __future__ import annotations

import time

from celery import shared_task

from projects.errors import ApplicationError
from projects.jobs import run_job


@shared_task(name="tests.worker_tasks.run_steps")
def run_steps(job_id: int) -> None:
    """``params``: ``steps`` (int), ``sleep`` (s per step), ``fail_at`` (step that raises)."""

    def work(ctx):
        steps = int(ctx.job.params.get("steps", 3))
        for step in range(steps):
            if ctx.job.params.get("fail_at") == step:
                raise ApplicationError(f"step {step} failed on purpose")
            time.sleep(float(ctx.job.params.get("sleep", 0.0)))
            ctx.progress("stepping", (step + 1) / steps, {"step": step})
        return {"steps": steps}

    run_job(job_id, work)

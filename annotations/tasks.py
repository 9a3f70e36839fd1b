"""Celery tasks of the annotations app, on the ``default`` queue: thin, they take a job id
and hand the work to the one job runner (``projects.jobs.run_job``), which claims the row,
records progress and always leaves it in a terminal status."""
from __future__ import annotations

from celery import shared_task

from annotations.exporters import EXPORT_TASK, export_job_run
from annotations.importers import IMPORT_TASK, import_job_run
from projects.jobs import run_job


@shared_task(name=IMPORT_TASK, acks_late=True, reject_on_worker_lost=True)
def import_dataset(job_id: int) -> None:
    run_job(job_id, import_job_run)


@shared_task(name=EXPORT_TASK, acks_late=True, reject_on_worker_lost=True)
def export_dataset(job_id: int) -> None:
    run_job(job_id, export_job_run)

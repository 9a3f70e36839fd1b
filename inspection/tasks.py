"""Celery tasks of the inspection app: thin, they take ids and call a service.

``train_model``, ``run_inference`` and ``evaluate_model`` are routed to the ``gpu`` queue
(settings.CELERY_TASK_ROUTES). acks_late + reject_on_worker_lost (global
settings) mean a message is redelivered when its worker dies; the job runner
claims the row with a conditional update, so a redelivered task whose job is
already running or finished does nothing. A job whose worker died is not
re-run: the beat sweep fails it with "worker lost" (a training that killed its
worker, e.g. out of memory, would most likely kill the next one too; the user
can start it again).
"""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from inspection.services import evaluation, inference, model_versions, retraining, training
from projects.jobs import jobs_sweep_stale


@shared_task(
    name="inspection.tasks.train_model",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.INSPECTION_TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.INSPECTION_TRAINING_SOFT_TIME_LIMIT + 60,
)
def train_model(job_id: int) -> None:
    training.training_job_run(job_id=job_id)


@shared_task(
    name="inspection.tasks.run_inference",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT,
    time_limit=settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT + 60,
)
def run_inference(job_id: int) -> None:
    inference.inference_job_run(job_id=job_id)


@shared_task(
    name="inspection.tasks.evaluate_model",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT,
    time_limit=settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT + 60,
)
def evaluate_model(job_id: int) -> None:
    evaluation.evaluation_job_run(job_id=job_id)


@shared_task(name="inspection.tasks.redraw_predictions", acks_late=True, reject_on_worker_lost=True, soft_time_limit=1800, time_limit=1900)
def redraw_predictions(job_id: int) -> None:
    """Redraw a model version's predicted regions after a threshold change (``default`` queue)."""
    model_versions.predictions_redraw_run(job_id=job_id)


@shared_task(name="inspection.tasks.sweep_stale_jobs", soft_time_limit=60, time_limit=90)
def sweep_stale_jobs() -> int:
    """Beat: fail running jobs whose heartbeat stopped (worker lost)."""
    return jobs_sweep_stale()


@shared_task(name="inspection.tasks.check_retraining", soft_time_limit=120, time_limit=180)
def check_retraining() -> int:
    """Beat: start trainings that projects' retraining policies ask for (annotation saves count too)."""
    return retraining.retrain_check_all()

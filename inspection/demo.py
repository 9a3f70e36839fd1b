"""The inspection step of ``make demo``: train a default model, activate it, predict every image.

Registered with ``projects.demo.register_step`` (InspectionConfig.ready), it runs
after the demo project is filled and before the web server starts, so the review
queue already holds flagged images when the browser opens. The jobs are the
normal job rows, run here in-process through the same job bodies the worker
runs (their Celery messages, sent too, find nothing left to claim).
"""
from __future__ import annotations

import time
from typing import Callable

from django.db.models import Max

from inspection.models import ModelVersion, Prediction
from projects.models import Job, Project

DEMO_PIPELINE = "patchcore"
# The rail demo trains the rail pipeline with a budget a laptop CPU finishes in a few minutes
# (128x256 working size, the paper's patch schedule halved with it).
RAIL_DEMO_CONFIG = {
    "image_size": 128, "max_steps": 120, "max_seconds": 300, "warmup_steps": 10, "val_every": 15,
    "patch_max": 10, "patch_min": 7, "patch_step": 1, "ae_steps": 300, "ae_batch_size": 64,
}


def demo_config(project: Project) -> dict:
    """Work at the images' own size when they are smaller than the project's working size."""
    largest = project.images.aggregate(w=Max("width"), h=Max("height"))
    size = min(project.image_size, max(largest["w"] or 0, largest["h"] or 0) or project.image_size)
    return {"image_size": max(64, size)}


def train_demo_model(*, project: Project, users: dict, log: Callable[[str], None] = print) -> ModelVersion | None:
    """Safe to run twice: a project that already has an active model is left alone."""
    from inspection.services.inference import inference_job_run
    from inspection.services.training import training_job_run, training_job_start

    active = ModelVersion.objects.filter(project=project, is_active=True).first()
    if active is not None:
        log(f"model version {active.number} ({active.pipeline}) is already active; not training")
        return active
    started = time.monotonic()
    pipeline, config = ("rail", dict(RAIL_DEMO_CONFIG)) if project.kind == Project.Kind.RAIL else (DEMO_PIPELINE, demo_config(project))
    log(f"training {pipeline} on the demo images ({config['image_size']} px) ...")
    job = training_job_start(project=project, user=users.get("admin"), pipeline=pipeline, config=config, activate=True)
    job = _run(job, training_job_run)
    if job.status != Job.Status.SUCCEEDED:
        log(f"training {job.status}: {job.error}; the demo continues without a model")
        return None
    model_version = ModelVersion.objects.get(job=job)
    metrics = model_version.metrics
    log(
        f"model version {model_version.number}: image AUROC {metrics.get('image_auroc', float('nan')):.3f}, "
        f"pixel AUROC {metrics.get('pixel_auroc', float('nan')):.3f}, threshold {model_version.threshold:.4g}"
    )
    for inference in Job.objects.filter(project=project, kind=Job.Kind.INFERENCE, status=Job.Status.QUEUED):
        _run(inference, inference_job_run)
    predictions = Prediction.objects.filter(model_version=model_version)
    log(
        f"predicted {predictions.count()} images, {predictions.filter(flagged=True).count()} flagged for review "
        f"({time.monotonic() - started:.0f} s)"
    )
    return model_version


def _run(job: Job, body) -> Job:
    """Run the job body here; if a worker claimed it first, wait for the worker instead."""
    if body(job_id=job.pk) is None:
        while not Job.objects.get(pk=job.pk).is_terminal:
            time.sleep(0.5)
    job.refresh_from_db()
    return job

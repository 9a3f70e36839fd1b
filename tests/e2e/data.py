"""Tiny deterministic project data for the browser tests, saved through the real services."""
from __future__ import annotations

import io

from PIL import Image as PILImage

SIZE = 64


def _png(array) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_images(project, user, *, train_normal: int, test_normal: int, test_anomalous: int, seed: int = 0, size: int = SIZE):
    """Upload synthetic textured surfaces (anomalous ones carry scratches, spots, cracks):
    normal train images, and labelled normal/anomalous test images for metrics and curves.
    Returns the created Image rows in upload order."""
    from ml.data.synthetic import generate
    from projects.services import image_upload

    samples = generate(train_normal + test_normal, test_anomalous, size=size, seed=seed)
    normal, anomalous = samples[: train_normal + test_normal], samples[train_normal + test_normal:]
    created = []
    for group, split, state in (
        (normal[:train_normal], "train", "normal"),
        (normal[train_normal:], "test", "normal"),
        (anomalous, "test", "anomalous"),
    ):
        if group:
            files = [(f"{s.name}.png", _png(s.image)) for s in group]
            created += image_upload(project=project, files=files, uploaded_by=user, split=split, state=state).created
    return created


FAST_PATCHCORE = {"image_size": 64, "batch_size": 8, "coreset_ratio": 0.5, "device": "cpu", "calibration_images": 8}


def train_and_predict(project, user):
    """Train PatchCore on the project, activate it and predict every image, in this process
    (Celery eager mode: the real task code without a worker). Returns the model version."""
    from django.conf import settings

    import inspection.tasks  # noqa: F401  registers the tasks eager mode runs
    from inspection.models import ModelVersion
    from inspection.services import inference, training
    from projects.models import Job

    eager = settings.CELERY_TASK_ALWAYS_EAGER
    settings.CELERY_TASK_ALWAYS_EAGER = True
    try:
        job = training.training_job_start(project=project, user=user, pipeline="patchcore", config=FAST_PATCHCORE, activate=True)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, (job.status, job.error, job.traceback)
        model_version = ModelVersion.objects.get(job=job)
        job = inference.inference_job_start(project=project, user=user, model_version=model_version)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, (job.status, job.error, job.traceback)
        return model_version
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER = eager

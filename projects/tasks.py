"""Celery tasks of the ground floor: thin, they call a service."""
from celery import shared_task

from projects.jobs import jobs_sweep_queued, run_job
from projects.services import UPLOAD_TASK, blob_collect_garbage, image_thumbnails_make, image_upload_job_run


@shared_task(name="projects.tasks.collect_blobs", soft_time_limit=1800, time_limit=1900)
def collect_blobs() -> int:
    return blob_collect_garbage()


@shared_task(name="projects.tasks.sweep_queued_jobs", soft_time_limit=60, time_limit=90)
def sweep_queued_jobs() -> dict:
    """Beat: send jobs whose message never reached the broker; fail those queued too long."""
    return jobs_sweep_queued()


@shared_task(name="projects.tasks.make_thumbnails", acks_late=True, soft_time_limit=600, time_limit=660)
def make_thumbnails(image_ids: list[int]) -> int:
    """Thumbnails of new images (``default`` queue), so no request decodes an original."""
    return image_thumbnails_make(image_ids=image_ids)


@shared_task(name=UPLOAD_TASK, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def upload_images(job_id: int) -> None:
    """A large upload, checked and stored by a worker (``default`` queue)."""
    run_job(job_id, image_upload_job_run)

"""Celery tasks of the ground floor: thin, they call a service."""
from celery import shared_task

from projects.jobs import run_job
from projects.services import blob_collect_garbage
from projects.video import VIDEO_TASK, video_import_run


@shared_task(name="projects.tasks.collect_blobs", soft_time_limit=1800, time_limit=1900)
def collect_blobs() -> int:
    return blob_collect_garbage()


@shared_task(name=VIDEO_TASK, acks_late=True, reject_on_worker_lost=True)
def import_video(job_id: int) -> None:
    run_job(job_id, video_import_run)

"""Celery tasks of the ground floor: thin, they call a service."""
from celery import shared_task

from projects.services import blob_collect_garbage


@shared_task(name="projects.tasks.collect_blobs", soft_time_limit=1800, time_limit=1900)
def collect_blobs() -> int:
    return blob_collect_garbage()

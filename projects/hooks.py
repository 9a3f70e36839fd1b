"""Extension points that upper floors fill in (imports point down: projects
never imports inspection or annotations).

``images_uploaded``: callables ``fn(*, project_id: int, image_ids: list[int])``
run after an upload's transaction commits (never inside it, never for a
rolled-back upload). The inspection app registers one in its
``AppConfig.ready()`` to predict new images with the project's active model::

    from projects import hooks
    hooks.register_images_uploaded(predict_new_images)

A hook that raises is logged and does not fail the upload (it already committed).
"""
from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)

ImagesUploaded = Callable[..., None]
images_uploaded: list[ImagesUploaded] = []


def register_images_uploaded(fn: ImagesUploaded) -> ImagesUploaded:
    """Register ``fn`` once (registering the same function twice is refused)."""
    if fn in images_uploaded:
        raise ValueError(f"{fn!r} is already registered for images_uploaded")
    images_uploaded.append(fn)
    return fn


def emit_images_uploaded(*, project_id: int, image_ids: list[int]) -> None:
    for fn in list(images_uploaded):
        try:
            fn(project_id=project_id, image_ids=list(image_ids))
        except Exception:
            logger.exception("images_uploaded hook %r failed for project %s", fn, project_id)


# ``project_stats``: callables ``fn(*, project) -> dict`` whose keys are merged into
# GET /api/projects/{id}/stats/ (the inspection app adds the active model and the
# review backlog). Registered the same way, from ``AppConfig.ready()``.
project_stats: list[Callable[..., dict]] = []


def register_project_stats(fn: Callable[..., dict]) -> Callable[..., dict]:
    if fn in project_stats:
        raise ValueError(f"{fn!r} is already registered for project_stats")
    project_stats.append(fn)
    return fn


def collect_project_stats(*, project) -> dict:
    merged: dict = {}
    for fn in list(project_stats):
        merged.update(fn(project=project))
    return merged


# ``project_created``: callables ``fn(*, project, actor)`` run inside the transaction that creates a
# project, so what they add (the annotations app: a rail project's "rail" label class) is created
# with it or not at all. Unlike ``images_uploaded``, an error here fails the creation.
project_created: list[Callable[..., None]] = []


def register_project_created(fn: Callable[..., None]) -> Callable[..., None]:
    if fn in project_created:
        raise ValueError(f"{fn!r} is already registered for project_created")
    project_created.append(fn)
    return fn


def emit_project_created(*, project, actor) -> None:
    for fn in list(project_created):
        fn(project=project, actor=actor)

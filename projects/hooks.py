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

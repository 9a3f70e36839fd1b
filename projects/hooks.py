"""Extension points that upper floors fill in (imports point down: projects
never imports inspection or annotations).

``images_uploaded``: callables ``fn(*, project_id: int, image_ids: list[int])``
run for new images. The inspection app registers one in its
``AppConfig.ready()`` to predict new images with the project's active model::

    from projects import hooks
    hooks.register_images_uploaded(predict_new_images)

An upload runs them inside its transaction, so what a hook writes (an
inference job) commits with the images, and work it sends to a worker leaves
after commit; a hook that refuses with an ApplicationError (the job queue is
unreachable: 503) refuses the whole upload. Importers run them after commit,
where an error is only logged. Any other error of a hook is logged and rolls
back only that hook's own writes.
"""
from __future__ import annotations

import logging
from typing import Callable

from django.db import transaction

from projects.errors import ApplicationError

logger = logging.getLogger(__name__)

ImagesUploaded = Callable[..., None]
images_uploaded: list[ImagesUploaded] = []


def register_images_uploaded(fn: ImagesUploaded) -> ImagesUploaded:
    """Register ``fn`` once (registering the same function twice is refused)."""
    if fn in images_uploaded:
        raise ValueError(f"{fn!r} is already registered for images_uploaded")
    images_uploaded.append(fn)
    return fn


def emit_images_uploaded(*, project_id: int, image_ids: list[int], refusable: bool = False) -> None:
    """Run the hooks; with ``refusable`` an ApplicationError of a hook propagates (the caller's
    transaction rolls back), otherwise every error is logged."""
    for fn in list(images_uploaded):
        try:
            with transaction.atomic():  # a failing hook rolls back its own writes, not the caller's
                fn(project_id=project_id, image_ids=list(image_ids))
        except ApplicationError:
            if refusable:
                raise
            logger.exception("images_uploaded hook %r failed for project %s", fn, project_id)
        except Exception:
            logger.exception("images_uploaded hook %r failed for project %s", fn, project_id)

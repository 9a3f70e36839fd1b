"""The audit log: every write by a user leaves an AuditEvent (who, what, which object, when)."""
from __future__ import annotations

from typing import Any

from django.db import models

from projects.models import AuditEvent, Project


def audit_record(
    actor,
    verb: str,
    obj: models.Model | None,
    project: Project | None = None,
    details: dict[str, Any] | None = None,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
) -> AuditEvent:
    """Record ``actor`` doing ``verb`` (e.g. ``"image.upload"``) to ``obj``.

    The project is taken from ``obj`` when not given (the object itself, or its
    ``project`` attribute), so the admin audit page of a project lists it.
    Call it inside the service's transaction: the event commits with the change.
    """
    if project is None and obj is not None:
        project = obj if isinstance(obj, Project) else getattr(obj, "project", None)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
    return AuditEvent.objects.create(
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        project=project,
        verb=verb,
        object_type=object_type or "",
        object_id="" if object_id is None else str(object_id),
        details=details or {},
    )

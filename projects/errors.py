"""The one domain error (STYLE.md "One domain error").

Services raise :class:`ApplicationError` (or a subclass carrying its HTTP
status); the single DRF exception handler in ``projects.api.exceptions``
turns it into ``{"error": message, "details": ...}``. Management commands and
tasks catch it and print/store ``message``.
"""
from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A problem the caller can understand and fix: bad input, missing rights, a conflict."""

    status: int = 400

    def __init__(self, message: str, *, details: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class PermissionDenied(ApplicationError):
    """A member of the project without the role the action needs."""

    status = 403


class NotFound(ApplicationError):
    """Missing, or invisible to the caller (outsiders see nothing of a project)."""

    status = 404


class Conflict(ApplicationError):
    """The state changed since the caller read it (stale version, job already finished)."""

    status = 409


class PayloadTooLarge(ApplicationError):
    status = 413

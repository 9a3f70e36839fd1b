"""The single DRF exception handler: every error leaves the API as
``{"error": "<message>", "details": <anything or null>}``."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from projects.errors import ApplicationError


def _first_message(detail) -> str:
    """A one-line message out of DRF's nested validation detail, naming the field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
        return "invalid input"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "invalid input"
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"error": exc.message, "details": exc.details}, status=exc.status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        body = {"error": _first_message(exc.detail), "details": exc.detail}
    else:
        detail = getattr(exc, "detail", None)
        body = {"error": str(detail) if detail is not None else str(exc), "details": None}
    response.data = body
    return response

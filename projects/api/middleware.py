"""Request-level guards of the API: body size per endpoint kind, and the JSON error envelope
for what DRF's exception handler never sees (500s, unknown URLs, oversized bodies)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import JsonResponse
from django.urls import Resolver404, resolve

logger = logging.getLogger("django.request")

# URL names (and methods) whose bodies are file uploads: they get MAX_UPLOAD_BYTES
# when the caller is signed in; everything else gets API_MAX_JSON_BYTES.
UPLOAD_ENDPOINTS = {("image-list", "POST"), ("import-list", "POST")}


def is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def error_response(message: str, status: int, details=None) -> JsonResponse:
    return JsonResponse({"error": message, "details": details}, status=status)


def _signed_in(request) -> bool:
    """A session user or a valid API token (the same check DRF makes later, expiry included)."""
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        return True
    if request.META.get("HTTP_AUTHORIZATION", "").startswith("Token "):
        from projects.api.tokens import ExpiringTokenAuthentication
        from rest_framework.exceptions import AuthenticationFailed

        try:
            return ExpiringTokenAuthentication().authenticate(request) is not None
        except AuthenticationFailed:
            return False
    return False


class ApiGuardMiddleware:
    """Sits after AuthenticationMiddleware.

    * Refuses API bodies over their endpoint kind's limit from ``Content-Length``,
      before anything reads them (413): JSON endpoints, anonymous callers and the
      token endpoint get ``API_MAX_JSON_BYTES``; the upload and import endpoints get
      ``MAX_UPLOAD_BYTES`` for signed-in callers.
    * Answers errors outside DRF's reach on ``/api/`` with ``{"error", "details"}``:
      unhandled exceptions (500, logged with the traceback), unknown URLs (404),
      Django's own refusals of oversized or malformed requests (413/400), and
      errors that non-JSON renderers drew in their own format.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("Content-Length is not a number", 400)
        limit, setting = settings.API_MAX_JSON_BYTES, "API_MAX_JSON_BYTES"
        if length > limit and self._is_upload(request) and _signed_in(request):
            limit, setting = settings.MAX_UPLOAD_BYTES, "MAX_UPLOAD_BYTES"
        if length > limit:
            return error_response(
                f"request body is {length} bytes, over the limit of {limit} bytes for this endpoint ({setting})",
                413, {"limit": limit},
            )
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            # Django's own pages (unknown URL, CSRF failure) and non-JSON renderers (the
            # schema's YAML, the docs page's HTML) answer errors in their format.
            message = getattr(response, "data", None) or {}
            detail = message.get("error") if isinstance(message, dict) else None
            return error_response(detail or response.reason_phrase.lower(), response.status_code)
        return response

    @staticmethod
    def _is_upload(request) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return (match.url_name, request.method) in UPLOAD_ENDPOINTS

    def process_exception(self, request, exception):
        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return error_response("request body too large", 413)
        if isinstance(exception, (SuspiciousOperation, TooManyFieldsSent, BadRequest)):
            return error_response(f"bad request: {exception}", 400)
        logger.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"status_code": 500})
        return error_response("internal server error; the failure was logged", 500)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")

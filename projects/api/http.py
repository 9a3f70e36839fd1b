"""The one way the API serves bytes with an ETag: Django's ``condition()``.

``If-None-Match`` with the current tag answers 304 without loading the bytes;
``If-Match`` with another tag answers 412.
"""
from __future__ import annotations

from typing import Callable

from django.http import HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition

from projects.filenames import content_disposition


def etag_response(
    request,
    *,
    etag: str,
    load: Callable[[], bytes],
    content_type: str,
    cache: dict,
    filename: str | None = None,
    disposition: str = "inline",
) -> HttpResponse:
    """``load()`` served as ``content_type`` under the strong tag ``"<etag>"``; ``cache`` goes to Cache-Control
    (on 304 answers too), ``filename`` to an RFC 6266 Content-Disposition."""

    @condition(etag_func=lambda _request: etag)
    def respond(_request) -> HttpResponse:
        response = HttpResponse(load(), content_type=content_type)
        if filename:
            response["Content-Disposition"] = content_disposition(filename, disposition=disposition)
        return response

    response = respond(getattr(request, "_request", request))
    patch_cache_control(response, **cache)
    return response

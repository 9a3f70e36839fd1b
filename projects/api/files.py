"""Signed links to stored files: the review queue's images and heatmaps.

The review page loads an image and a heatmap for every item. Through the authenticated
endpoints each of those costs a session or token lookup, a permission query and the row
before the bytes. A queue item instead carries links signed with the server's secret: whoever
was allowed to read the item may fetch its files until the link expires, with one query (the
blob) and no session. As with any pre-signed link (S3's, for example), a link copied out stays
valid until it expires, so expiry is short (``SIGNED_FILE_SECONDS``, an hour by default);
removing someone from a project stops new links at once and old ones within that time.

Links are stable within a quarter of an hour, so the browser's cache keeps working; the content
is addressed by its hash, so a link never points at changed bytes.
"""
from __future__ import annotations

import hmac
import time
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.views import View

from projects.api.http import etag_response
from projects.api.middleware import error_response
from projects.models import blob_storage

EXPIRY_STEP_SECONDS = 15 * 60  # links issued within one step are equal (cacheable)


def signed_file_url(name: str, *, content_type: str, filename: str = "") -> str:
    """A link to the stored file ``name`` (a blob key), served as ``content_type`` (and
    ``filename`` in Content-Disposition), valid for at least ``SIGNED_FILE_SECONDS``."""
    expires = (int(time.time()) + settings.SIGNED_FILE_SECONDS) // EXPIRY_STEP_SECONDS * EXPIRY_STEP_SECONDS + EXPIRY_STEP_SECONDS
    query = {"type": content_type, "expires": expires}
    if filename:
        query["filename"] = filename
    query["signature"] = _signature(name, content_type, filename, expires)
    return f"{reverse('signed-file', kwargs={'name': name})}?{urlencode(query)}"


def _signature(name: str, content_type: str, filename: str, expires: int) -> str:
    value = "\n".join((name, content_type, filename, str(expires)))
    return salted_hmac("projects.api.files.signed_file_url", value, algorithm="sha256").hexdigest()[:40]


class SignedFileView(View):
    """``GET /api/files/<name>?type=&expires=&signature=``: the file, when the signature matches
    and the link has not expired; 403 otherwise (for everyone: no session is consulted)."""

    http_method_names = ["get", "head"]

    def get(self, request, name: str):
        query = request.GET
        content_type, filename = query.get("type", ""), query.get("filename", "")
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            return error_response("file link: 'expires' is missing or not a number", 403)
        expected = _signature(name, content_type, filename, expires)
        if not hmac.compare_digest(expected, query.get("signature", "")):
            return error_response("file link: the signature does not match (links are made by the API)", 403)
        remaining = expires - int(time.time())
        if remaining <= 0:
            return error_response("file link: expired; ask the API for the item again for a new link", 403)

        def load() -> bytes:
            with blob_storage().open(name, "rb") as stored:
                return stored.read()

        try:
            return etag_response(request, etag=name, load=load, content_type=content_type,
                                 cache={"private": True, "max_age": remaining}, filename=filename or None)
        except FileNotFoundError:
            return error_response("file not found", 404)

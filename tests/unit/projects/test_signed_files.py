"""Signed file links (projects.api.files): the review queue's images and heatmaps load by the
link alone, and only an untampered, unexpired link loads anything."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from projects.api.files import signed_file_url
from projects.models import blob_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored():
    name = blob_storage().save("x", ContentFile(b"\x89PNG not really"))
    return name


def _with(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return f"{parts.path}?{urlencode({**query, **changes})}"


def test_a_signed_link_serves_the_file_without_a_session_and_revalidates(stored):
    url = signed_file_url(stored, content_type="image/png", filename="défaut 1.png")
    response = Client().get(url)  # nobody signed in
    assert response.status_code == 200
    assert b"".join(response) == b"\x89PNG not really"
    assert response["Content-Type"] == "image/png"
    assert "filename*=UTF-8''d%C3%A9faut%201.png" in response["Content-Disposition"]
    assert 0 < int(response["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 3600 + 15 * 60
    assert Client().get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert signed_file_url(stored, content_type="image/png", filename="défaut 1.png") == url  # stable: cacheable


@pytest.mark.parametrize("change", [
    {"signature": "0" * 40},  # forged
    {"type": "text/html"},  # another content type than signed (no HTML from a blob)
    {"filename": "other.png"},
    {"expires": "99999999999"},  # a later expiry than signed
    {"expires": "soon"},
])
def test_a_tampered_link_is_refused_with_the_json_envelope(stored, change):
    response = Client().get(_with(signed_file_url(stored, content_type="image/png", filename="a.png"), **change))
    assert response.status_code == 403
    assert response.json()["error"].startswith("file link:")


def test_a_link_to_another_file_and_an_expired_link_are_refused(stored, settings, monkeypatch):
    other = blob_storage().save("y", ContentFile(b"other bytes"))
    url = signed_file_url(stored, content_type="image/png")
    swapped = url.replace(stored, other)
    assert Client().get(swapped).status_code == 403

    later = time.time() + settings.SIGNED_FILE_SECONDS + 16 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    expired = Client().get(url)
    assert expired.status_code == 403 and "expired" in expired.json()["error"]


def test_a_signed_link_to_a_missing_blob_is_a_404(settings):
    response = Client().get(signed_file_url("f" * 64, content_type="image/png"))
    assert response.status_code == 404 and response.json()["error"] == "file not found"

"""Helpers for integration tests (real Postgres; see tests/conftest.py for services and the worker)."""
from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
import pytest


@pytest.fixture
def upload():
    """``upload(client, project, {"name.png": bytes, ...}, split=..., state=...)`` -> response of the
    multipart POST to /api/projects/{id}/images/."""

    def post(client, project, files: dict[str, bytes], **fields):
        payload = {"files": [SimpleUploadedFile(name, data) for name, data in files.items()], **fields}
        return client.post(f"/api/projects/{project.pk}/images/", payload, format="multipart")

    return post

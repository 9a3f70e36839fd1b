"""The plain (no JavaScript) page lists a member's projects and images."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_login_then_projects_and_images(client, bob, project, other_project, image_factory):
    image_factory(project, 2, split="train", state="normal")
    assert client.get("/plain/")["Location"].startswith("/plain/login/")
    response = client.post("/plain/login/", {"username": "bob", "password": "bob-password"})
    assert response.status_code == 302
    page = client.get("/plain/").content.decode()
    assert "Metal plates" in page and "annotator" in page and "Rails" not in page
    detail = client.get(f"/plain/projects/{project.pk}/").content.decode()
    assert detail.count("/thumbnail") == 2 and "image_000.png" in detail and "2 images" in detail


def test_outsider_gets_404(client, dave, project):
    client.force_login(dave)
    assert client.get(f"/plain/projects/{project.pk}/").status_code == 404

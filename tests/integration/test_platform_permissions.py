"""Every projects endpoint against every persona (real Postgres): the outsider gets 404,
a member without the role 403 with a message naming the role, the right role succeeds."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.models import AuditEvent
from tests.factories import make_png

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ALL = {"alice", "bob", "charlie"}
ADMIN = {"alice"}

# (method, url, body, roles allowed); {p} project id, {i} image id, {m} charlie's user id.
ENDPOINTS = [
    ("get", "/api/projects/{p}/", None, ALL),
    ("patch", "/api/projects/{p}/", {"description": "x"}, ADMIN),
    ("delete", "/api/projects/{p}/", None, ADMIN),
    ("get", "/api/projects/{p}/members/", None, ALL),
    ("post", "/api/projects/{p}/members/", {"username": "frank", "role": "inspector"}, ADMIN),
    ("patch", "/api/projects/{p}/members/{m}/", {"role": "annotator"}, ADMIN),
    ("delete", "/api/projects/{p}/members/{m}/", None, ADMIN),
    ("get", "/api/projects/{p}/stats/", None, ALL),
    ("get", "/api/projects/{p}/audit/", None, ADMIN),
    ("get", "/api/projects/{p}/images/", None, ALL),
    ("upload", "/api/projects/{p}/images/", None, ADMIN),
    ("get", "/api/images/{i}/", None, ALL),
    ("patch", "/api/images/{i}/", {"state": "normal"}, {"alice", "bob"}),
    ("patch", "/api/images/{i}/", {"split": "train"}, ADMIN),
    ("delete", "/api/images/{i}/", None, ADMIN),
    ("get", "/api/images/{i}/file", None, ALL),
    ("get", "/api/images/{i}/thumbnail", None, ALL),
]


def _call(client, method, url, body):
    if method == "upload":
        return client.post(url, {"files": [SimpleUploadedFile("new.png", make_png(seed=99))]}, format="multipart")
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "dave"])
@pytest.mark.parametrize("method, url, body, allowed", ENDPOINTS, ids=[f"{e[0]} {e[1]} {e[2] or ''}" for e in ENDPOINTS])
def test_role_matrix(personas_api, project, image_factory, charlie, django_user_model, persona, method, url, body, allowed):
    django_user_model.objects.create_user("frank", password="x")
    image = image_factory(project)[0]
    events_before = AuditEvent.objects.count()
    response = _call(personas_api[persona], method, url.format(p=project.pk, i=image.pk, m=charlie.pk), body)
    if persona == "dave":
        assert response.status_code == 404, response.content
        assert response.json()["error"].endswith("not found")
    elif persona in allowed:
        assert response.status_code in (200, 201, 202, 204), response.content  # 202: a thumbnail still being made
        if method != "get":
            assert AuditEvent.objects.count() > events_before  # every write leaves an event
    else:
        assert response.status_code == 403, response.content
        assert "your role in this project is" in response.json()["error"]
    if response.status_code >= 400:
        assert AuditEvent.objects.count() == events_before  # refused: nothing written


def test_an_image_of_another_project_is_invisible(alice_api, other_project, image_factory):
    foreign = image_factory(other_project)[0]
    for url in (f"/api/images/{foreign.pk}/", f"/api/images/{foreign.pk}/file", f"/api/images/{foreign.pk}/thumbnail"):
        response = alice_api.get(url)
        assert response.status_code == 404 and response.json()["error"] == "image not found"
    assert alice_api.get(f"/api/projects/{other_project.pk}/images/").status_code == 404


def test_staff_are_admins_of_every_project(api_for, staff_user, other_project, image_factory):
    image = image_factory(other_project)[0]
    client = api_for(staff_user)
    assert client.get(f"/api/projects/{other_project.pk}/audit/").status_code == 200
    assert client.delete(f"/api/images/{image.pk}/").status_code == 204


def test_nonexistent_ids_are_404(alice_api, project):
    assert alice_api.get("/api/projects/999999/").status_code == 404
    assert alice_api.get("/api/images/999999/").json() == {"error": "image not found", "details": None}

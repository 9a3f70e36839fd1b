"""Projects, members, auth, stats and audit through the API (SQLite)."""
from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from projects.models import AuditEvent, Membership, Project

pytestmark = pytest.mark.django_db


def test_token_then_token_auth(alice, project):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    projects = client.get("/api/projects/").json()["results"]
    assert [(p["slug"], p["role"]) for p in projects] == [("metal-plates", "admin")]


def test_wrong_password_is_refused_with_a_message(alice):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"] == "wrong username or password"


def test_missing_fields_name_the_field():
    response = APIClient().post("/api/auth/token/", {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("password:")


def test_session_login_checks_csrf_then_me_lists_roles(bob, project):
    client = APIClient(enforce_csrf_checks=True)
    refused = client.post("/api/auth/login/", {"username": "bob", "password": "bob-password"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    client.get("/api/auth/me/")  # unauthenticated, but hands out the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/auth/login/", {"username": "bob", "password": "bob-password"}, format="json",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    me = client.get("/api/auth/me/").json()
    assert me["username"] == "bob" and me["roles"] == {str(project.pk): "annotator"}
    assert me["projects"] == [{"id": project.pk, "name": "Metal plates", "slug": "metal-plates", "role": "annotator"}]
    assert client.post("/api/auth/logout/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value).status_code == 204
    assert client.get("/api/auth/me/").status_code == 403


def test_anonymous_gets_nothing(anon_api, project):
    assert anon_api.get("/api/projects/").status_code == 403
    assert anon_api.get(f"/api/projects/{project.pk}/").status_code == 403


def test_only_staff_create_projects_and_the_creator_becomes_admin(staff_user, api_for, alice_api):
    refused = alice_api.post("/api/projects/", {"name": "New"}, format="json")
    assert refused.status_code == 403
    response = api_for(staff_user).post("/api/projects/", {"name": "Rail tracks", "kind": "rail"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "rail-tracks" and body["role"] == "admin" and body["kind"] == "rail"
    assert Membership.objects.get(project_id=body["id"], user=staff_user).role == "admin"
    assert AuditEvent.objects.filter(verb="project.create", actor=staff_user, project_id=body["id"]).exists()


def test_duplicate_slug_is_a_conflict(staff_user, api_for, project):
    response = api_for(staff_user).post("/api/projects/", {"name": "Metal plates"}, format="json")
    assert response.status_code == 409 and "metal-plates" in response.json()["error"]


def test_outsiders_do_not_see_projects(dave_api, project, other_project):
    assert dave_api.get("/api/projects/").json()["count"] == 0
    assert dave_api.get(f"/api/projects/{project.pk}/").status_code == 404


def test_staff_see_every_project_as_admin(staff_user, api_for, project, other_project):
    projects = api_for(staff_user).get("/api/projects/").json()["results"]
    assert {(p["slug"], p["role"]) for p in projects} == {("metal-plates", "admin"), ("rails", "admin")}


def test_admin_edits_project_and_it_is_audited(alice_api, alice, project):
    response = alice_api.patch(f"/api/projects/{project.pk}/", {"description": "plates from line 3"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "plates from line 3"
    event = AuditEvent.objects.get(verb="project.update")
    assert event.actor == alice and event.details["after"] == {"description": "plates from line 3"}


def test_invalid_kind_is_a_400_naming_the_field(alice_api, project):
    response = alice_api.patch(f"/api/projects/{project.pk}/", {"kind": "teleport"}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("kind:")


def test_members_add_change_remove(alice_api, project, django_user_model):
    django_user_model.objects.create_user("frank", password="x")
    added = alice_api.post(f"/api/projects/{project.pk}/members/", {"username": "frank", "role": "inspector"}, format="json")
    assert added.status_code == 201
    frank_id = added.json()["user_id"]
    again = alice_api.post(f"/api/projects/{project.pk}/members/", {"username": "frank", "role": "admin"}, format="json")
    assert again.status_code == 409
    changed = alice_api.patch(f"/api/projects/{project.pk}/members/{frank_id}/", {"role": "annotator"}, format="json")
    assert changed.json()["role"] == "annotator"
    assert alice_api.delete(f"/api/projects/{project.pk}/members/{frank_id}/").status_code == 204
    members = alice_api.get(f"/api/projects/{project.pk}/members/").json()["results"]
    assert [(m["username"], m["role"]) for m in members] == [("alice", "admin"), ("bob", "annotator"), ("charlie", "inspector")]
    verbs = list(AuditEvent.objects.filter(project=project).values_list("verb", flat=True))
    assert {"membership.add", "membership.change_role", "membership.remove"} <= set(verbs)


def test_unknown_user_is_named(alice_api, project):
    response = alice_api.post(f"/api/projects/{project.pk}/members/", {"username": "nobody", "role": "admin"}, format="json")
    assert response.status_code == 400 and "nobody" in response.json()["error"]


def test_the_last_admin_cannot_leave_or_be_demoted(alice_api, alice, project):
    demote = alice_api.patch(f"/api/projects/{project.pk}/members/{alice.pk}/", {"role": "annotator"}, format="json")
    assert demote.status_code == 409 and "last admin" in demote.json()["error"]
    assert alice_api.delete(f"/api/projects/{project.pk}/members/{alice.pk}/").status_code == 409
    assert Membership.objects.get(project=project, user=alice).role == "admin"


def test_stats_count_by_split_and_state(charlie_api, project, image_factory):
    image_factory(project, 2, split="train", state="normal")
    image_factory(project, 1, split="test", state="anomalous", seed=10)
    stats = charlie_api.get(f"/api/projects/{project.pk}/stats/").json()
    assert stats["counts"]["train"]["normal"] == 2 and stats["counts"]["test"]["anomalous"] == 1
    assert stats["totals"] == {"images": 3, "annotated": 0}
    assert stats["by_split"]["train"] == 2 and stats["by_state"]["unlabeled"] == 0


def test_audit_log_is_for_admins(alice_api, bob_api, project, image_factory):
    image_factory(project, 1)
    assert bob_api.get(f"/api/projects/{project.pk}/audit/").status_code == 403
    events = alice_api.get(f"/api/projects/{project.pk}/audit/").json()["results"]
    assert events[0]["verb"] == "image.upload" and events[0]["actor"] == "alice"


def test_deleting_a_project_keeps_its_audit_trail(alice_api, alice, project, image_factory):
    image_factory(project, 2)
    assert alice_api.delete(f"/api/projects/{project.pk}/").status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert AuditEvent.objects.filter(verb="project.delete", actor=alice, details__slug="metal-plates").exists()


def test_schema_and_docs_page_use_no_external_assets(alice_api):
    schema = alice_api.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/projects/{project_id}/images/" in schema.content
    response = alice_api.get("/api/docs/")
    docs = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert "swagger-ui" in docs and assets
    assert all(url.startswith(("/static/", "/api/docs/")) for url in assets), assets  # served by us, no CDN
    assert "https://" not in docs and "http://" not in docs
    # No inline script: the page's own script is a URL the CSP allows.
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in docs
    assert alice_api.get("/api/docs/?script=").status_code == 200


def test_schema_and_docs_need_a_signed_in_user_unless_opened(settings, anon_api):
    for url in ("/api/schema/", "/api/docs/"):
        response = anon_api.get(url)
        assert response.status_code in (401, 403) and b"error" in response.content
    settings.API_SCHEMA_PUBLIC = True
    assert anon_api.get("/api/schema/").status_code == 200
    assert anon_api.get("/api/docs/").status_code == 200


def test_deleting_a_project_with_annotations_and_jobs_removes_everything(alice_api, alice, project, image_factory):
    from annotations.models import Annotation, AnnotationSet, LabelClass
    from projects.models import Image, Job

    image = image_factory(project)[0]
    label = LabelClass.objects.create(project=project, name="scratch")
    annotation_set = AnnotationSet.objects.create(image=image, version=1)
    Annotation.objects.create(annotation_set=annotation_set, label_class=label, version=1, author=alice,
                              polygon={"outer": [[1, 1], [10, 1], [10, 10]], "holes": []})
    Job.objects.create(project=project, kind="import", requested_by=alice)
    assert alice_api.delete(f"/api/projects/{project.pk}/").status_code == 204
    assert not Image.objects.exists() and not Annotation.objects.exists() and not Job.objects.exists()

"""Issue 9 hardening seen from outside: body limits, the error envelope everywhere on /api/,
odd JSON, odd file names, sign-in throttles, token expiry and revocation, password rules, CSP."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from projects.models import Image
from tests.factories import make_png

pytestmark = pytest.mark.django_db


def _envelope(response, status):
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error", "details"} and body["error"]
    return body


# --- body limits ---------------------------------------------------------------------

def test_json_bodies_over_the_json_limit_get_413_before_being_read(settings, project, alice_api):
    settings.API_MAX_JSON_BYTES = 4096
    payload = json.dumps({"name": "x" * 5000, "slug": "big"})
    response = alice_api.post("/api/projects/", payload, content_type="application/json")
    body = _envelope(response, 413)
    assert "API_MAX_JSON_BYTES" in body["error"]


def test_anonymous_requests_get_the_small_limit_even_on_upload_endpoints(settings, project, anon_api):
    settings.API_MAX_JSON_BYTES = 4096
    big = make_png(128, 128, seed=3)
    assert len(big) > 4096
    _envelope(anon_api.post(f"/api/projects/{project.pk}/images/", {"files": [_file("a.png", big)]}), 413)
    _envelope(anon_api.post("/api/auth/token/", json.dumps({"username": "x" * 5000, "password": "y"}),
                            content_type="application/json"), 413)


def test_signed_in_uploads_get_the_upload_limit(settings, project, alice, alice_api):
    settings.API_MAX_JSON_BYTES = 4096
    big = make_png(128, 128, seed=3)
    session = APIClient()
    session.force_login(alice)
    response = session.post(f"/api/projects/{project.pk}/images/", {"files": [_file("a.png", big)]})
    assert response.status_code == 201, response.json()
    # A token caller is signed in too.
    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(f"/api/projects/{project.pk}/images/", {"files": [_file("b.png", make_png(128, 128, seed=4))]})
    assert response.status_code == 201, response.json()
    settings.MAX_UPLOAD_BYTES = 4096
    _envelope(session.post(f"/api/projects/{project.pk}/images/", {"files": [_file("c.png", make_png(128, 128, seed=5))]}), 413)


def _file(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


# --- odd JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_deeply_nested_json_is_a_400(project, alice_api, anon_api, who):
    nested = "[" * 100_000 + "]" * 100_000
    client, url = (anon_api, "/api/auth/token/") if who == "anonymous" else (alice_api, f"/api/projects/{project.pk}/inference-jobs/")
    body = _envelope(client.post(url, nested, content_type="application/json"), 400)
    assert "nested deeper than" in body["error"]
    # Moderately deep but still too deep (no RecursionError involved) is refused the same way.
    body = _envelope(client.post(url, "[" * 50 + "]" * 50, content_type="application/json"), 400)
    assert "nested deeper than 32" in body["error"]


def test_huge_integers_are_a_400(project, alice_api):
    url = f"/api/projects/{project.pk}/inference-jobs/"
    body = _envelope(alice_api.post(url, '{"image_ids": [1180591620717411303424]}', content_type="application/json"), 400)
    assert "out of range" in body["error"]
    body = _envelope(alice_api.post(url, {"image_ids": list(range(1, 10_002))}, format="json"), 400)
    assert "image_ids" in body["error"]


def test_nan_is_not_json(project, alice_api):
    response = alice_api.patch(f"/api/projects/{project.pk}/", '{"image_size": NaN}', content_type="application/json")
    _envelope(response, 400)


# --- the envelope for everything on /api/ -------------------------------------------------

def test_unhandled_errors_answer_the_json_envelope(monkeypatch, project, alice_api, caplog):
    from projects.api import views

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(views.selectors, "project_list_for", broken)
    body = _envelope(alice_api.get("/api/projects/"), 500)
    assert "disk on fire" not in body["error"]  # no internals to the caller...
    assert any("disk on fire" in str(r.exc_info) for r in caplog.records if r.exc_info)  # ...but logged


def test_unknown_api_urls_answer_the_json_envelope(alice_api, anon_api):
    _envelope(alice_api.get("/api/no-such-thing/"), 404)
    _envelope(anon_api.get("/api/projects/1/no-such-thing"), 404)


# --- file names -------------------------------------------------------------------------

def test_control_characters_in_file_names_never_break_downloads(project, alice_api):
    response = alice_api.post(f"/api/projects/{project.pk}/images/",
                              {"files": [_file("evil\x07\x1b[31m\u202egnp.exe", make_png(seed=8))]})
    assert response.status_code == 201, response.json()
    image = Image.objects.get()
    assert image.original_name == "evil[31mgnp.exe"  # bell, escape and the right-to-left override gone
    # Rows stored before the clean-up, with CR/LF and non-ASCII: still served.
    Image.objects.filter(pk=image.pk).update(original_name='dir/été "défaut"\r\n\x07.png')
    response = alice_api.get(f"/api/images/{image.pk}/file")
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('inline; filename="') and "filename*=UTF-8''%C3%A9t%C3%A9%20%22d%C3%A9faut%22.png" in disposition


# --- sign-in ------------------------------------------------------------------------------

def test_wrong_passwords_are_throttled_well_within_30(alice, bob, anon_api):
    statuses = [anon_api.post("/api/auth/token/", {"username": "alice", "password": f"guess-{i}"}, format="json").status_code
                for i in range(15)]
    assert statuses[:10] == [401] * 10 and 429 in statuses
    first = statuses.index(429)
    assert first <= 10
    # Locked for now, even with the right password; from another address too (the username counts).
    right = {"username": "alice", "password": "alice-password"}
    _envelope(anon_api.post("/api/auth/token/", right, format="json"), 429)
    _envelope(APIClient(REMOTE_ADDR="10.0.0.9").post("/api/auth/token/", right, format="json"), 429)
    # Another user from another address is not affected.
    assert APIClient(REMOTE_ADDR="10.0.0.8").post("/api/auth/token/", {"username": "bob", "password": "bob-password"},
                                                  format="json").status_code == 200


def test_every_login_door_shares_the_count(alice, anon_api, client):
    """Wrong passwords on the plain pages' login form lock the API too, and the other way round."""
    for i in range(10):
        response = client.post("/plain/login/", {"username": "alice", "password": f"guess-{i}"})
        assert response.status_code == 200 and not response.wsgi_request.user.is_authenticated
    _envelope(anon_api.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json"), 429)
    # The form refuses the right password too while locked (it cannot say 429; it just does not sign in).
    response = client.post("/plain/login/", {"username": "alice", "password": "alice-password"})
    assert not response.wsgi_request.user.is_authenticated


def test_tokens_expire(settings, alice, anon_api):
    key = anon_api.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/auth/me/").status_code == 200
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(hours=settings.API_TOKEN_TTL_HOURS, seconds=1))
    assert "expired" in _envelope(client.get("/api/auth/me/"), (401, 403))["error"]
    fresh = anon_api.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json").json()["token"]
    assert fresh != key


def test_logout_revokes_tokens(alice, anon_api):
    key = anon_api.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post("/api/auth/logout/").status_code == 204
    _envelope(client.get("/api/auth/me/"), (401, 403))


def test_password_change_checks_validators_and_revokes_tokens(alice, anon_api):
    key = anon_api.post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    url = "/api/auth/password/"
    assert "old_password" in _envelope(client.post(url, {"old_password": "nope", "new_password": "x"}, format="json"), 400)["error"]
    body = _envelope(client.post(url, {"old_password": "alice-password", "new_password": "password"}, format="json"), 400)
    assert "too common" in body["error"] and "too short" in body["error"]
    assert client.get("/api/auth/me/").status_code == 200  # nothing changed yet
    assert client.post(url, {"old_password": "alice-password", "new_password": "quartz-lantern-97"}, format="json").status_code == 204
    _envelope(client.get("/api/auth/me/"), (401, 403))
    assert anon_api.post("/api/auth/token/", {"username": "alice", "password": "quartz-lantern-97"}, format="json").status_code == 200


# --- browser-facing headers -------------------------------------------------------------

def test_pages_carry_a_content_security_policy(client):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy

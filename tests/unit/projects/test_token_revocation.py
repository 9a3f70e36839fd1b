"""A password changed anywhere (admin site, changepassword, a shell) revokes the user's API tokens."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _user_with_token():
    user = get_user_model().objects.create_user("zoe", password="a-long-passphrase-1")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/auth/me/").status_code == 200
    return user, client


def test_set_password_outside_the_api_revokes_the_token():
    user, client = _user_with_token()
    user.set_password("another-long-passphrase-2")
    user.save()
    assert not Token.objects.filter(user=user).exists()
    assert client.get("/api/auth/me/").status_code in (401, 403)


def test_changepassword_command_revokes_the_token(monkeypatch):
    user, client = _user_with_token()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "yet-another-passphrase-3")
    call_command("changepassword", "zoe")
    assert not Token.objects.filter(user=user).exists()


def test_saving_without_a_new_password_keeps_the_token():
    user, client = _user_with_token()
    user.first_name = "Zoe"
    user.save()
    assert client.get("/api/auth/me/").status_code == 200

"""Settings come from the environment through helpers that fail loudly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ImproperlyConfiguredEnv, env_bool, env_choice, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("Yes", True), ("on", True),
                                             ("0", False), ("false", False), ("no", False), ("", False)])
def test_env_bool_accepts_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("FLAG", value)
    assert env_bool("FLAG") is expected


def test_env_bool_typo_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "ture")
    with pytest.raises(ImproperlyConfiguredEnv, match="DJANGO_DEBUG='ture' is not a boolean"):
        env_bool("DJANGO_DEBUG")


def test_env_bool_default_when_unset(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", True) is True


def test_env_int(monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "10_000")
    assert env_int("MAX_UPLOAD_BYTES", 1) == 10000
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "10MB")
    with pytest.raises(ImproperlyConfiguredEnv, match="MAX_UPLOAD_BYTES='10MB' is not an integer"):
        env_int("MAX_UPLOAD_BYTES", 1)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "0")
    with pytest.raises(ImproperlyConfiguredEnv, match="must be at least 1"):
        env_int("MAX_UPLOAD_BYTES", 1, minimum=1)


def test_env_url_checks_the_scheme(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://db/x")
    with pytest.raises(ImproperlyConfiguredEnv, match="DATABASE_URL='mysql://db/x' has scheme 'mysql'"):
        env_url("DATABASE_URL", "sqlite:///x", schemes=("sqlite", "postgres"))
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert env_url("DATABASE_URL", "sqlite:///x", schemes=("sqlite", "postgres")) == "postgres://u@h/db"


def test_env_choice_and_list_and_required(monkeypatch):
    monkeypatch.setenv("STORAGE_BACKEND", "ftp")
    with pytest.raises(ImproperlyConfiguredEnv, match="STORAGE_BACKEND='ftp' is not one of database, s3"):
        env_choice("STORAGE_BACKEND", "database", ("database", "s3"))
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example , b.example,,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.delenv("AWS_STORAGE_BUCKET_NAME", raising=False)
    with pytest.raises(ImproperlyConfiguredEnv, match="AWS_STORAGE_BUCKET_NAME must be set"):
        env_str("AWS_STORAGE_BUCKET_NAME", required=True)


def _load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables."""
    clean = {"PATH": os.environ.get("PATH", ""), "VAR_DIR": str(tmp_path), **env}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.MAX_UPLOAD_BYTES)"
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"})


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off(tmp_path):
    result = _load_settings(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_settings_start_with_a_secret_key_or_in_debug(tmp_path):
    production = _load_settings(tmp_path, SECRET_KEY="s" * 50, MAX_UPLOAD_BYTES="1234")
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["False", "1234"]
    assert _load_settings(tmp_path, DJANGO_DEBUG="1").returncode == 0


@pytest.mark.parametrize("name, value, message", [
    ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
    ("MAX_IMAGE_PIXELS", "lots", "MAX_IMAGE_PIXELS='lots' is not an integer"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y' has scheme 'mysql'"),
    ("STORAGE_BACKEND", "ftp", "STORAGE_BACKEND='ftp' is not one of"),
    ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL='kafka://x' has scheme 'kafka'"),
])
def test_a_bad_value_stops_start_up_with_its_name(tmp_path, name, value, message):
    result = _load_settings(tmp_path, SECRET_KEY="s" * 50, **{name: value})
    assert result.returncode != 0 and message in result.stderr


def test_s3_backend_needs_a_bucket(tmp_path):
    result = _load_settings(tmp_path, DJANGO_DEBUG="1", STORAGE_BACKEND="s3")
    assert result.returncode != 0 and "AWS_STORAGE_BUCKET_NAME must be set" in result.stderr

"""Production settings from the environment: `check --deploy` is clean, and typos fail loudly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[3]

PRODUCTION = {
    "SECRET_KEY": "k3y-" + "x7Qz9vLp2Rm" * 6,
    "ALLOWED_HOSTS": "inspect.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
}


def _check(tmp_path, **overrides):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG" and not k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    env.update(PRODUCTION, VAR_DIR=str(tmp_path), DJANGO_DEBUG="0", **overrides)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_has_no_warnings_with_production_like_environment(tmp_path):
    result = _check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_without_the_security_variables_check_deploy_names_them(tmp_path):
    result = _check(tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SESSION_COOKIE_SECURE="0",
                    CSRF_COOKIE_SECURE="0")
    output = result.stdout + result.stderr
    for warning in ("W004", "W008", "W012", "W016"):
        assert warning in output


def test_a_typo_in_a_security_variable_stops_start_up(tmp_path):
    result = _check(tmp_path, SESSION_COOKIE_SECURE="ture")
    assert result.returncode != 0 and "SESSION_COOKIE_SECURE='ture' is not a boolean" in result.stderr

"""Shared fixtures: personas, API clients, image data, real services, a real Celery worker.

Personas (healthchecks style): in the ``project`` fixture alice is admin, bob
annotator, charlie inspector; dave is a user outside it. Passwords are
``"<name>-password"``. ``api_for(user)`` gives a DRF client authenticated as
that user; ``alice_api`` ... ``dave_api`` and ``anon_api`` are ready-made.

Which database and broker (see tests/detect_services.py, run by ``make test``):
plain ``pytest`` uses SQLite in memory unless ``DATABASE_URL`` points to
Postgres. Tests marked ``postgres``, ``redis`` or ``worker`` skip with a
visible reason when the service is not configured, except with ``CI=true``,
where they fail instead: CI must never skip them silently.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import make_png

BASE_DIR = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis"))


def _uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def pytest_configure(config):
    # Persona passwords are hashed for every test; the production hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if _uses_redis() and not os.environ.get("CELERY_BROKER_KEY_PREFIX"):
        # Parallel test runs share one Redis: give this run (and the workers it
        # starts, through the environment) its own key space.
        from config.celery import app

        prefix = f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}:"
        os.environ["CELERY_BROKER_KEY_PREFIX"] = prefix
        app.conf.broker_transport_options = {"global_keyprefix": prefix}


_NEEDS = {
    "postgres": (_uses_postgres, "needs Postgres: set DATABASE_URL=postgres://... (make test does when it answers)"),
    "redis": (_uses_redis, "needs Redis: set CELERY_BROKER_URL=redis://... (make test does when it answers)"),
    "worker": (lambda: _uses_postgres() and _uses_redis(), "starts a Celery worker: needs Postgres and Redis"),
}


def pytest_runtest_setup(item):
    for marker, (available, reason) in _NEEDS.items():
        if item.get_closest_marker(marker) and not available():
            if IN_CI:
                pytest.fail(f"CI=true: {reason}", pytrace=False)
            pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On Postgres, give each run its own test database (test_test_<pid>) so
    parallel runs on one server do not drop each other's database."""
    if _uses_postgres():
        test_settings = settings.DATABASES["default"].setdefault("TEST", {})
        base = test_settings.get("NAME") or f"test_{settings.DATABASES['default']['NAME']}"
        test_settings["NAME"] = f"{base}_{os.getpid()}"


# --- personas -----------------------------------------------------------------
def _user(django_user_model, name: str, **extra):
    return django_user_model.objects.create_user(
        username=name, email=f"{name}@example.com", password=f"{name}-password", **extra
    )


@pytest.fixture
def alice(django_user_model):
    return _user(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model):
    return _user(django_user_model, "bob")


@pytest.fixture
def charlie(django_user_model):
    return _user(django_user_model, "charlie")


@pytest.fixture
def dave(django_user_model):
    return _user(django_user_model, "dave")


@pytest.fixture
def staff_user(django_user_model):
    """A staff user: admin of every project without a membership."""
    return _user(django_user_model, "erin", is_staff=True)


@pytest.fixture
def project(alice, bob, charlie, dave):
    """A project where alice is admin, bob annotator, charlie inspector; dave is an outsider."""
    from projects.models import Membership, Project

    project = Project.objects.create(name="Metal plates", slug="metal-plates", created_by=alice)
    for user, role in ((alice, "admin"), (bob, "annotator"), (charlie, "inspector")):
        Membership.objects.create(project=project, user=user, role=role)
    return project


@pytest.fixture
def other_project(django_user_model):
    """A project none of the personas belongs to."""
    from projects.models import Project

    return Project.objects.create(name="Rails", slug="rails")


# --- API clients --------------------------------------------------------------
@pytest.fixture
def api_for():
    """``api_for(user)`` -> a DRF APIClient authenticated as ``user``."""
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def anon_api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def alice_api(api_for, alice):
    return api_for(alice)


@pytest.fixture
def bob_api(api_for, bob):
    return api_for(bob)


@pytest.fixture
def charlie_api(api_for, charlie):
    return api_for(charlie)


@pytest.fixture
def dave_api(api_for, dave):
    return api_for(dave)


@pytest.fixture
def personas_api(alice_api, bob_api, charlie_api, dave_api):
    """Clients by persona name, for table-driven permission tests."""
    return {"alice": alice_api, "bob": bob_api, "charlie": charlie_api, "dave": dave_api}


# --- images -------------------------------------------------------------------
@pytest.fixture
def png():
    """``png(width=64, height=64, seed=0)`` -> PNG bytes (different seeds, different content)."""
    return make_png


@pytest.fixture
def image_factory(alice):
    """``image_factory(project, n=1, split=..., state=..., size=64, seed=0)`` -> saved Image rows,
    created through the upload service so they are real (blob, sha256, size)."""
    from projects.services import image_upload

    def make(project, n: int = 1, *, split: str = "unassigned", state: str = "unlabeled", size: int = 64, seed: int = 0):
        files = [(f"image_{seed + i:03d}.png", make_png(size, size, seed=seed + i)) for i in range(n)]
        return image_upload(project=project, files=files, uploaded_by=alice, split=split, state=state).created

    return make


# --- a real Celery worker -----------------------------------------------------
class CeleryWorker:
    """A running ``celery -A config worker`` subprocess (see the ``celery_worker`` fixture)."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log()}")

    def wait_for_job(self, job_id: int, timeout: float = 120):
        """Poll the job row until it is terminal; return it (fails with the worker log otherwise)."""
        from projects.models import Job

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = Job.objects.get(pk=job_id)
            if job.is_terminal:
                return job
            if self.process.poll() is not None:
                raise AssertionError(f"worker died (exit {self.process.returncode}) during job {job_id}:\n{self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} not finished after {timeout} s (status {job.status}):\n{self.log()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker's whole process group (for the 'worker lost' tests)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def _database_url_for_test_db() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_env():
    """Extra environment variables for the ``celery_worker`` process (a test module
    overrides this fixture, e.g. to point TMPDIR at a full disk)."""
    return {}


@pytest.fixture
def celery_worker_preexec():
    """A callable run in the worker process before it starts (e.g. a resource limit), or None."""
    return None


@pytest.fixture
def celery_worker(transactional_db, tmp_path, celery_worker_env, celery_worker_preexec):
    """A REAL Celery worker process consuming the ``default`` and ``gpu`` queues.

    It runs ``celery -A config worker --pool solo`` against this run's Redis
    broker (own key prefix) and this run's *test* Postgres database (pytest-django's
    name, e.g. ``test_test_<pid>``), so it sees rows the test committed: the
    fixture needs ``transactional_db`` (the ``db`` fixture's rolled-back
    transaction would be invisible to it). Mark tests using it with
    ``@pytest.mark.worker`` (skips without Postgres and Redis outside CI).
    Besides the apps' tasks it loads ``tests.worker_tasks`` (runner exercises).

    The yielded :class:`CeleryWorker` has ``wait_for_job(job_id)``, ``log()``
    and ``kill()`` (SIGKILL, for worker-lost tests); the worker is stopped after
    the test. Its output is in ``tmp_path / "worker.log"``.
    """
    if not (_uses_postgres() and _uses_redis()):
        reason = _NEEDS["worker"][1]
        if IN_CI:
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url_for_test_db(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DJANGO_DEBUG="1",
        JOB_HEARTBEAT_SECONDS=env.get("JOB_HEARTBEAT_SECONDS", "2"),
        PYTHONUNBUFFERED="1",
    )
    env.update(celery_worker_env)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-Q", "default,gpu", "--pool", "solo", "--loglevel", "INFO", "--include", "tests.worker_tasks",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=celery_worker_preexec,
        )
    worker = CeleryWorker(process, log_path)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Sign-in throttle counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()

"""docker-compose.yml and the Dockerfile describe the deployment the README promises.
(No Docker engine runs here: the file is parsed, and checked by `docker compose config`
or `docker-compose config` when either is installed.)"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_volumes_and_health_checks(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "beat"}
    assert all("healthcheck" in service for service in services.values())
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}


def test_workers_consume_their_queues_and_the_gpu_worker_reserves_a_gpu(compose):
    cpu, gpu = compose["services"]["worker-cpu"], compose["services"]["worker-gpu"]
    assert cpu["command"][cpu["command"].index("-Q") + 1] == "default"
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    assert gpu["command"][gpu["command"].index("--concurrency") + 1] == "1"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_app_services_use_postgres_and_redis_and_require_a_secret(compose):
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["DJANGO_DEBUG"] == "0" and env["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_dockerfile_installs_pinned_torch_before_the_requirements():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==2.14.1" in line and "torchvision==0.29.1" in line)
    requirements = next(i for i, line in enumerate(lines) if "pip install -r requirements.txt" in line)
    assert lines[0].startswith("#") and "FROM python:3.11-slim" in lines and torch < requirements


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_accepts_the_file():
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run([*command, "config", "-q"], cwd=ROOT, env=dict(os.environ, SECRET_KEY="test-only"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

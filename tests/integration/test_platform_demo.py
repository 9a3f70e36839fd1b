"""`manage.py demo` end to end: SQLite and the filesystem broker under a temporary VAR_DIR,
served to HTTP clients, a job through its worker, and Ctrl-C stops everything it started."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(url, data=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    body = json.dumps(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as response:
        return response.status, response.read()


def test_demo_serves_the_project_runs_jobs_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEMO_DATA"}}
    env.update(VAR_DIR=str(tmp_path), DJANGO_DEBUG="1", DEMO_PORT=str(port), PYTHONUNBUFFERED="1")
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        demo = subprocess.Popen([sys.executable, "manage.py", "demo"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 480  # later floors' demo steps train a small model first
        while "Demo running" not in log_path.read_text() or "ready." not in log_path.read_text():
            assert demo.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        assert f"{base}/" in log_path.read_text() and "admin / admin-demo" in log_path.read_text()
        for _ in range(60):  # runserver may need a moment after the banner
            try:
                status, _ = _request(f"{base}/plain/login/")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200
        _, body = _request(f"{base}/api/auth/token/", {"username": "admin", "password": "admin-demo"})
        token = json.loads(body)["token"]
        _, body = _request(f"{base}/api/projects/", token=token)
        project = json.loads(body)["results"][0]
        assert project["slug"] == "demo" and project["image_count"] >= 30
        # A background job goes through the demo's own worker (filesystem broker, no Redis).
        _, body = _request(f"{base}/api/projects/{project['id']}/exports/", {"format": "coco"}, token=token)
        job_id = json.loads(body)["id"]
        deadline = time.monotonic() + 120
        while True:
            _, body = _request(f"{base}/api/projects/{project['id']}/exports/", token=token)
            job = next(j for j in json.loads(body)["results"] if j["id"] == job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            demo.wait(timeout=60)
        finally:
            # The demo's own group, plus its children by what their command lines name
            # (the worker's schedule file lies in tmp_path, runserver names the port).
            leftovers = sorted(
                set(subprocess.run(["pgrep", "-g", str(demo.pid)], capture_output=True, text=True).stdout.split())
                | set(subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split())
                | set(subprocess.run(["pgrep", "-f", f"runserver --noreload 127.0.0.1:{port}"],
                                     capture_output=True, text=True).stdout.split())
            )
            for pid in leftovers:
                os.kill(int(pid), signal.SIGKILL)
    assert "demo stopped" in log_path.read_text()
    assert leftovers == []

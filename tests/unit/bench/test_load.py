"""bench/load.py end to end on a small scale: its own Postgres database, gunicorn as `make web`
runs it, reviewers taking items from the shared queue; every request answers and the result
file has every endpoint (so the README's load table can be regenerated)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.postgres

BASE_DIR = Path(__file__).resolve().parents[3]


def test_a_small_load_run_answers_every_request(tmp_path):
    db = settings.DATABASES["default"]
    server = f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/postgres"
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, "bench/load.py", "--users", "4", "--duration", "4", "--think", "0.2", "--predictions", "200",
         "--server", server, "--out", str(out), "--note", "test"],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    for name in ("next", "image", "heatmap", "verdict"):
        row = result["endpoints"][name]
        assert row["requests"] > 0 and row["errors"] == 0, (name, row)
    assert "| next |" in run.stdout  # the README table

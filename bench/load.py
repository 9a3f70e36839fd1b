"""Load run: simulated reviewers against gunicorn as ``make web`` runs it, on Postgres.

    nice -n 10 .venv/bin/python bench/load.py            # 50 reviewers, 60 s, 10,000 predictions
    .venv/bin/python bench/load.py --table bench/results/load.json   # the README table from a result

What it does, bounded and on loopback only:

1. creates a fresh Postgres database (``bench_load_<pid>``, dropped at the end) and migrates it;
2. fills it quickly: one project, an active model version and ``--predictions`` images with one
   prediction each (32x32 noise images, 100 distinct 32x32 heatmaps; rows written with
   ``bulk_create``), ``--users`` inspectors with API tokens;
3. starts ``gunicorn config.wsgi:application --workers 2 --timeout 120`` (the ``make web``
   command line, with its DB_CONN_MAX_AGE=60) on a free port, with debug off;
4. runs ``--users`` reviewers for ``--duration`` seconds, each in a loop: take the next item of
   the review queue (``POST .../review-queue/next``: the first unreviewed prediction, flagged
   first, that no other reviewer holds), fetch its image and its heatmap, post a verdict, think
   ``--think`` seconds (an asyncio client with one connection each), after a few untimed
   loops that warm the workers up;
5. writes ``bench/results/load.json`` (per endpoint: count, errors, p50/p95/p99 in ms, plus the
   run's parameters and the machine) and prints the markdown table.

The client runs on the same machine as the server; on a small shared machine both compete for
the CPUs, so the figures are an upper bound of what the server itself costs.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
ENDPOINTS = ("next", "image", "heatmap", "verdict")
TARGET_P95_MS = {"next": 150.0, "image": 150.0}
GUNICORN_ARGS = ["config.wsgi:application", "--workers", "2", "--timeout", "120"]  # as in the Makefile's web target


# --- database -----------------------------------------------------------------------
def _admin_connect(server_url: str):
    import psycopg

    return psycopg.connect(server_url, autocommit=True)


def database_create(server_url: str, name: str) -> str:
    with _admin_connect(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def database_drop(server_url: str, name: str) -> None:
    with _admin_connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _png(array) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def seed(*, predictions: int, users: int) -> dict:
    """Rows for the run, written in bulk (the caller has set DATABASE_URL and called django.setup())."""
    import hashlib

    import numpy as np
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from inspection.models import ModelVersion, Prediction
    from projects.models import Blob, Image, Membership, Project

    rng = np.random.default_rng(0)
    User = get_user_model()
    admin = User.objects.create_user("bench-admin", password="bench-admin-password")
    project = Project.objects.create(name="Load bench", slug="load-bench", created_by=admin)
    Membership.objects.create(project=project, user=admin, role="admin")
    reviewers = User.objects.bulk_create([User(username=f"reviewer{i:02d}") for i in range(users)])
    Membership.objects.bulk_create([Membership(project=project, user=u, role="inspector") for u in reviewers])
    tokens = [Token.objects.create(user=u).key for u in reviewers]

    def blob(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest(), data

    heatmaps = [blob(_png(rng.integers(0, 256, (32, 32), dtype=np.uint8))) for _ in range(100)]
    artifact = blob(b"not a real model: the load run never predicts")
    Blob.objects.bulk_create([Blob(sha256=k, data=d, size=len(d)) for k, d in [*heatmaps, artifact]], ignore_conflicts=True)
    model_version = ModelVersion.objects.create(
        project=project, number=1, pipeline="patchcore", artifact=artifact[0], threshold=0.5, region_threshold=0.5, is_active=True
    )
    batch = 1000
    for start in range(0, predictions, batch):
        images = [blob(_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))) for _ in range(start, min(start + batch, predictions))]
        Blob.objects.bulk_create([Blob(sha256=k, data=d, size=len(d)) for k, d in images], ignore_conflicts=True)
        rows = Image.objects.bulk_create([
            Image(project=project, file=k, sha256=k, width=32, height=32, content_type="image/png",
                  split="test", original_name=f"img{start + i:05d}.png", uploaded_by=admin)
            for i, (k, _) in enumerate(images)
        ])
        scores = rng.random(len(rows))
        Prediction.objects.bulk_create([
            Prediction(image=row, model_version=model_version, score=float(s), heatmap=heatmaps[(start + i) % 100][0],
                       heatmap_min=0.0, heatmap_max=float(s), flagged=bool(s > 0.5))
            for i, (row, s) in enumerate(zip(rows, scores))
        ])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics for the bulk-loaded tables, as autovacuum would gather them
    return {"project": project.pk, "tokens": tokens}


# --- the server -----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = open(log_path, "wb")
    process = subprocess.Popen([str(gunicorn), *GUNICORN_ARGS, "--bind", f"127.0.0.1:{port}"], cwd=BASE_DIR, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start within 60 s")


# --- the reviewers ---------------------------------------------------------------------
class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status_code, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class HttpClient:
    """A small HTTP/1.1 client on asyncio streams, for loopback load only.

    A general client (httpx) spent about 4.7 ms of CPU per request here, a fifth of the two
    cores the server needs; this one spends a small fraction of that, so the run measures the
    server. It keeps one connection while the server allows (gunicorn's sync workers close
    each one), reads Content-Length, chunked or close-delimited bodies, and sends JSON."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader = self.writer = None

    async def request(self, method: str, url: str, *, params: dict | None = None, json_body=None) -> Response:
        if params:
            from urllib.parse import urlencode

            url += ("&" if "?" in url else "?") + urlencode(params)
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = f"{method} {url} HTTP/1.1\r\n{self.headers}"
        if json_body is not None:
            head += "Content-Type: application/json\r\n"
        if body or method != "GET":
            head += f"Content-Length: {len(body)}\r\n"
        return await asyncio.wait_for(self._exchange(head.encode() + b"\r\n" + body), self.timeout)

    async def _exchange(self, data: bytes) -> Response:
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                attempt = 1  # a fresh connection that fails is an error, not a stale keep-alive
            try:
                self.writer.write(data)
                await self.writer.drain()
                return await self._read()
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise ConnectionError("unreachable")

    async def _read(self) -> Response:
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readuntil(b"\r\n")
            await self.reader.readuntil(b"\r\n")
            body = b"".join(parts)
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


async def reviewer(number: int, *, host: str, port: int, token: str, project: int, until: float, think: float,
                   samples: dict[str, list[float]], errors: dict[str, list[str]], loops: int | None = None) -> None:
    """One reviewer's loop: the next queue item (held for them, so 50 people review 50 different
    images), its image and heatmap, a verdict, then ``think`` seconds."""
    rng = random.Random(number)
    client = HttpClient(host, port, {"Authorization": f"Token {token}"}, timeout=30.0)

    async def call(name: str, method: str, url: str, **kwargs):
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[name].append(f"{type(exc).__name__}: {exc}")
            await client.close()
            return None
        samples[name].append((time.perf_counter() - started) * 1000.0)
        if response.status_code >= 400:
            errors[name].append(f"{response.status_code}: {response.text[:200]}")
            return None
        return response

    await asyncio.sleep(rng.random() * think)  # reviewers do not all start at the same instant
    try:
        while time.monotonic() < until and loops != 0:
            loops = None if loops is None else loops - 1
            answer = await call("next", "POST", f"/api/projects/{project}/review-queue/next")
            item = answer.json()["prediction"] if answer is not None else None
            if item is not None:
                await call("image", "GET", item["image"]["file_url"])
                await call("heatmap", "GET", item["heatmap_url"])
                verdict = rng.choice(("anomaly", "normal", "unsure"))
                await call("verdict", "POST", f"/api/predictions/{item['id']}/review", json_body={"verdict": verdict})
            await asyncio.sleep(think)
    finally:
        await client.close()


WARMUP_LOOPS = 6  # untimed, one reviewer: a fresh worker's first requests import serializers and services


async def load(*, host: str, port: int, tokens: list[str], project: int, duration: float, think: float):
    samples = {name: [] for name in ENDPOINTS}
    errors = {name: [] for name in ENDPOINTS}
    for _ in range(WARMUP_LOOPS):  # sequential, so that both workers see every kind of request
        await reviewer(0, host=host, port=port, token=tokens[0], project=project, until=time.monotonic() + 60, think=0.0,
                       samples={name: [] for name in ENDPOINTS}, errors=errors, loops=1)
    until = time.monotonic() + duration
    await asyncio.gather(*[
        reviewer(i, host=host, port=port, token=token, project=project, until=until, think=think, samples=samples, errors=errors)
        for i, token in enumerate(tokens)
    ])
    return samples, errors


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summarise(samples, errors, duration: float) -> dict:
    out = {}
    for name in ENDPOINTS:
        values = samples[name]
        out[name] = {
            "requests": len(values) + sum(1 for e in errors[name] if not e[:3].isdigit()),
            "errors": len(errors[name]),
            "per_second": round(len(values) / duration, 1),
            "p50_ms": _percentile(values, 50), "p95_ms": _percentile(values, 95), "p99_ms": _percentile(values, 99),
            "mean_ms": round(statistics.fmean(values), 1) if values else None,
            "error_examples": sorted(set(errors[name]))[:5],
        }
    return out


def table(result: dict) -> str:
    """The README table of one result file."""
    params = result["parameters"]
    lines = [
        f"{params['users']} reviewers, {params['duration_s']:.0f} s, {params['predictions']:,} predictions, "
        f"think time {params['think_s']} s; gunicorn `{' '.join(GUNICORN_ARGS)}` on Postgres; "
        f"{result['machine']['cpus']} CPUs ({result['machine']['note']})",
        "",
        "| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms | target p95 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in ENDPOINTS:
        row = result["endpoints"][name]
        target = f"< {TARGET_P95_MS[name]:.0f} ms" if name in TARGET_P95_MS else ""
        lines.append(f"| {name} | {row['requests']} | {row['errors']} | {row['per_second']} | {row['p50_ms']} | "
                     f"{row['p95_ms']} | {row['p99_ms']} | {target} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--predictions", type=int, default=10_000)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="a Postgres server URL (its maintenance database) where a fresh database is created and dropped")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    parser.add_argument("--note", default="shared with other workloads", help="a word on the machine, kept in the JSON")
    parser.add_argument("--table", type=Path, help="only print the README table of this result file")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    if not 1 <= args.users <= 500 or not 1 <= args.duration <= 600 or not 1 <= args.predictions <= 100_000:
        parser.error("bounded run: 1..500 users, 1..600 s, 1..100,000 predictions")

    name = f"bench_load_{os.getpid()}"
    database_url = database_create(args.server, name)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_DEBUG="0", SECRET_KEY="bench-load-only",
               ALLOWED_HOSTS="127.0.0.1", VAR_DIR=str(var_dir), CELERY_BROKER_URL="filesystem://", LOG_LEVEL="WARNING",
               DB_CONN_MAX_AGE=os.environ.get("DB_CONN_MAX_AGE", "60"),  # the make web default
               DJANGO_SETTINGS_MODULE="config.settings")
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
        os.environ.update(env)
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        started = time.monotonic()
        data = seed(predictions=args.predictions, users=args.users)
        seeded_s = time.monotonic() - started
        print(f"seeded {args.predictions} predictions and {args.users} reviewers in {seeded_s:.1f} s", flush=True)
        from django.db import connections

        connections.close_all()
        port = _free_port()
        server = server_start(env, port, var_dir / "gunicorn.log")
        samples, errors = asyncio.run(load(host="127.0.0.1", port=port, tokens=data["tokens"], project=data["project"],
                                           duration=args.duration, think=args.think))
        result = {
            "parameters": {"users": args.users, "duration_s": args.duration, "predictions": args.predictions,
                           "think_s": args.think, "server": " ".join(GUNICORN_ARGS), "seed_s": round(seeded_s, 1)},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg(),
                        "note": args.note},
            "endpoints": summarise(samples, errors, args.duration),
            "targets": {"errors": 0, "p95_ms": TARGET_P95_MS},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(table(result))
        print(f"\nwritten to {args.out}")
        return 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        database_drop(args.server, name)


if __name__ == "__main__":
    sys.exit(main())

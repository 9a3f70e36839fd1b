"""``python manage.py demo``: migrate, build the demo project, serve it with a worker.

Runs the web server (``runserver --noreload``) and a Celery worker with an
embedded beat (default: kombu's filesystem broker under ``var/``, no Redis
needed) as child processes, prints the URL and the demo logins, and stops both
on Ctrl-C (or when either of them dies). Running it again reuses what exists.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from projects.demo import DEMO_USERS, demo_build, demo_password


class Command(BaseCommand):
    help = "Build the demo project (users, images, annotations) and serve it with a worker on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--no-serve", action="store_true", help="Build the data and exit (no server, no worker).")
        parser.add_argument("--data", default=os.environ.get("DEMO_DATA") or None,
                            help="A folder in MVTec AD layout to import instead of generated images (env DEMO_DATA).")
        parser.add_argument("--kind", default=os.environ.get("DEMO_KIND") or "unsupervised", choices=("unsupervised", "rail"),
                            help="rail: a rail project of generated track scenes with drawn rails and obstacles (env DEMO_KIND).")

    def handle(self, *args, host, port, no_serve, data, kind="unsupervised", **options):
        started = time.monotonic()
        if data is not None and not Path(data).is_dir():
            raise CommandError(f"DEMO_DATA={data!r} is not a folder")
        if not no_serve:
            self._check_port_free(host, port)
        self.stdout.write(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
                          f"({settings.DATABASES['default']['NAME']})")
        call_command("migrate", interactive=False, verbosity=0)
        project, _ = demo_build(data=Path(data) if data else None, log=self.stdout.write, kind=kind)
        self.stdout.write(f"demo data ready in {time.monotonic() - started:.0f} s")
        if no_serve:
            return
        self._serve(host, port, project)

    @staticmethod
    def _check_port_free(host: str, port: int) -> None:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise CommandError(f"{host}:{port} is in use (another demo running?); choose one with DEMO_PORT=8001") from None

    def _serve(self, host: str, port: int, project) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        env = dict(os.environ, DJANGO_DEBUG=os.environ.get("DJANGO_DEBUG", "1"), PYTHONUNBUFFERED="1")
        schedule = str(Path(settings.VAR_DIR) / "celerybeat-schedule")
        children = {
            # Each child leads its own process group, so stopping it also stops what
            # it started (the worker's embedded beat process) and nothing is left behind.
            "web": subprocess.Popen([sys.executable, manage, "runserver", "--noreload", f"{host}:{port}"], env=env,
                                    start_new_session=True),
            "worker": subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "--schedule", schedule,
                 "-Q", "default,gpu", "--pool", "solo", "--loglevel", "INFO", "-n", "demo@%h"],
                env=env, cwd=settings.BASE_DIR, start_new_session=True,
            ),
        }
        logins = ", ".join(f"{name} / {demo_password(name)}" for name, _ in DEMO_USERS)
        self.stdout.write(self.style.SUCCESS(f"\nDemo running: http://{host}:{port}/  (project {project.slug!r})"))
        self.stdout.write(f"Log in as {logins}. API docs: http://{host}:{port}/api/docs/. Ctrl-C stops everything.\n")
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed = None
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    failed = f"{name} exited with status {child.returncode}"
                    stopping = True
            time.sleep(0.5)
        self._stop_all(children)
        if failed:
            raise CommandError(f"{failed}; stopped the demo")
        self.stdout.write("demo stopped")

    @staticmethod
    def _stop_all(children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Whatever is still alive in a child's group (a stuck task, the beat
        # process of a worker that went first) is killed.
        for child in children.values():
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass

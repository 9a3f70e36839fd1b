"""Which real services the test run uses; prints shell ``export`` lines.

``make test`` runs ``eval "$(python tests/detect_services.py)"`` before pytest:

* ``DATABASE_URL`` and ``CELERY_BROKER_URL`` already set: kept as they are.
* otherwise Postgres at 127.0.0.1:5432 (user postgres) and Redis at
  127.0.0.1:6379 are used when they answer (test database ``test_test``
  plus a per-run suffix, Redis db 15);
* with ``CI=true`` both must answer: exit status 1 and a message otherwise,
  so CI never silently skips the Postgres/Redis/worker tests. Outside CI the
  tests marked ``postgres``/``redis``/``worker`` skip with a visible reason.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"


def postgres_answers(url: str = POSTGRES_URL) -> bool:
    try:
        import psycopg

        with psycopg.connect(url.replace("/test", "/postgres"), connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except Exception:
        return False


def redis_answers(url: str = REDIS_URL) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> int:
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    exports: dict[str, str] = {}
    missing: list[str] = []
    if not os.environ.get("DATABASE_URL"):
        if postgres_answers():
            exports["DATABASE_URL"] = POSTGRES_URL
        else:
            missing.append("Postgres at 127.0.0.1:5432")
    if not os.environ.get("CELERY_BROKER_URL"):
        if redis_answers():
            exports["CELERY_BROKER_URL"] = REDIS_URL
        else:
            missing.append("Redis at 127.0.0.1:6379")
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    if missing:
        message = f"{' and '.join(missing)} not answering"
        if in_ci:
            print(f"detect_services: CI=true but {message}; start them (see .ci/run)", file=sys.stderr)
            return 1
        print(f"detect_services: {message}; tests that need them will be skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

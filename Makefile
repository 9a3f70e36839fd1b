# Two commands: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed

# Idle OpenMP threads sleep instead of spinning: on a small shared CPU, spinning
# workers made torch work in the web server, worker and tests several times slower.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY

.PHONY: demo test venv venv-dev migrate web worker worker-gpu worker-cpu beat test-unit test-integration test-e2e bench frontend

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first so nothing pulls another build of it
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -r requirements.txt
	touch $(STAMP)

# Test-only packages (pytest, playwright, schemathesis, PyYAML): only `make test*` needs them.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	touch $(DEV_STAMP)

venv: $(STAMP)

venv-dev: $(DEV_STAMP)

frontend:
	$(MAKE) -C frontend build

demo: venv frontend
	DJANGO_DEBUG=1 $(PY) manage.py demo

# Real Postgres/Redis when they answer (required with CI=true): see tests/detect_services.py.
SERVICES = services="$$($(PY) tests/detect_services.py)" && eval "$$services" &&

test: venv-dev frontend
	$(MAKE) -C frontend test
	$(SERVICES) DJANGO_DEBUG=1 $(PY) -m pytest

test-unit: venv-dev
	DJANGO_DEBUG=1 $(PY) -m pytest tests/unit

test-integration: venv-dev
	$(SERVICES) DJANGO_DEBUG=1 $(PY) -m pytest tests/integration

test-e2e: venv-dev frontend
	$(SERVICES) DJANGO_DEBUG=1 $(PY) -m pytest tests/e2e

migrate: venv
	$(PY) manage.py migrate

# Sync workers: every request is short (slow work runs in jobs; the UI polls job progress).
# Database connections are kept for a minute instead of one new Postgres backend per request.
web: venv
	DB_CONN_MAX_AGE=$${DB_CONN_MAX_AGE:-60} $(VENV)/bin/gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers 2 --timeout 120

# One GPU worker per GPU, concurrency 1 (training and batch inference).
worker-gpu: venv
	$(VENV)/bin/celery -A config worker -Q gpu --concurrency 1 --prefetch-multiplier 1 -n gpu@%h

worker-cpu: venv
	$(VENV)/bin/celery -A config worker -Q default --concurrency 2 -n cpu@%h

worker: venv
	$(VENV)/bin/celery -A config worker -Q default,gpu --concurrency 1 -n all@%h

beat: venv
	$(VENV)/bin/celery -A config beat --schedule var/celerybeat-schedule

bench: venv
	$(PY) bench/quality.py
	$(PY) bench/speed.py

"""Schema-driven fuzzing (schemathesis + hypothesis): every operation of the project's own OpenAPI
schema, as an admin and as an anonymous caller, never answers 5xx, and every error is the envelope.

Requests go through Django's test client inside a rolled-back savepoint (so a
generated DELETE does not remove what the next example needs); half of the
examples aim at real objects (the path parameters replaced by ids of the
fixture's project, image, model version...), half at whatever ids hypothesis
draws. The number of examples per operation is bounded (FUZZ_EXAMPLES, default 12)
so that the whole file runs in about a minute.
"""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest
import requests
from django.db import transaction
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# Path parameter -> key of the ``targets`` fixture, per first path segment for ``pk``/``id``.
PK_TARGET = {"projects": "project_id", "jobs": "training_job", "images": "image_id",
             "model-versions": "model_version", "predictions": "prediction", "reviews": "review"}


def _openapi_schema():
    import schemathesis
    from drf_spectacular.generators import SchemaGenerator

    spec = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    return schemathesis.openapi.from_dict(spec)


def _operations():
    return [result.ok() for result in _openapi_schema().get_all_operations()]


def _real_ids(path: str, parameters: dict, targets: dict) -> dict:
    first = path.strip("/").split("/")[1]
    real = {}
    for name in parameters:
        key = PK_TARGET.get(first) if name in ("pk", "id") else name
        if key in targets:
            real[name] = targets[key]
    return {**parameters, **real}


def _send(client, case):
    """The generated request, serialized by requests (bodies of every media type), sent by Django's client."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs.pop("cookies", None)  # random session ids: the persona's own authentication counts
    prepared = requests.Request(
        method=kwargs["method"], url=kwargs["url"], headers=kwargs.get("headers"), params=kwargs.get("params"),
        json=kwargs.get("json"), data=kwargs.get("data"), files=kwargs.get("files"),
    ).prepare()
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in ("content-type", "content-length", "host")}
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.generic(prepared.method, parts.path, body, content_type=prepared.headers.get("Content-Type", ""),
                          QUERY_STRING=parts.query, **extra)


@pytest.mark.parametrize("persona", ["admin", "anonymous"])
def test_no_operation_answers_5xx(persona, clients, targets, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client = clients[persona]
    failures: list[str] = []
    for operation in _operations():
        @given(case=operation.as_strategy(), aim_at_real_objects=st.booleans())
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
        def run(case, aim_at_real_objects):
            if aim_at_real_objects and case.path_parameters:
                case.path_parameters = _real_ids(operation.path, case.path_parameters, targets)
            with transaction.atomic():
                response = _send(client, case)
                if getattr(response, "streaming", False):
                    # Read through the test client's wrapper, which closes the response without
                    # closing the test's database connection.
                    b"".join(response.streaming_content)
                transaction.set_rollback(True)
            where = f"{case.method} {case.formatted_path} as {persona}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.content[:200]!r}")
            elif response.status_code >= 400 and response["Content-Type"].startswith("application/json"):
                body = response.json()
                if not (isinstance(body, dict) and "error" in body and "details" in body):
                    failures.append(f"{where}: {response.status_code} without the error envelope: {body!r:.200}")

        run()
    assert not failures, "\n".join(sorted(set(failures))[:40])

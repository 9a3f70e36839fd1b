"""Every API endpoint x method x persona against one table of expected statuses (issue 9).

Endpoints come from the URL resolver, so a new endpoint (or a new method on a
view) without a row in ``MATRIX`` fails ``test_every_endpoint_has_a_row``.
Each request runs inside a savepoint that is rolled back, so a DELETE by one
persona does not change what the next one sees. Write requests send ``{}``: a
persona allowed past the role check gets the validation answer (400) or the
action's success, one refused gets 403 (a member without the role) or 404 (an
outsider: a project they cannot see does not exist for them). Anonymous callers
get 403 (session authentication is listed first, so DRF answers 403, not 401).

Personas: erin staff, alice admin, bob annotator, charlie inspector, dave outsider, anonymous.
"""
from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import URLResolver, get_resolver

from tests.unit.inspection.conftest import API_PERSONAS as PERSONAS

pytestmark = pytest.mark.django_db

A = 403  # anonymous

# (url name, method): statuses for (staff, admin, annotator, inspector, outsider, anonymous)
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("schema", "GET"): (200, 200, 200, 200, 200, A),
    ("api-docs", "GET"): (200, 200, 200, 200, 200, A),
    ("auth-token", "POST"): (400, 400, 400, 400, 400, 400),  # public; {} lacks credentials
    ("auth-login", "POST"): (400, 400, 400, 400, 400, 400),
    ("auth-logout", "POST"): (204, 204, 204, 204, 204, A),
    ("auth-me", "GET"): (200, 200, 200, 200, 200, A),
    ("auth-password", "POST"): (400, 400, 400, 400, 400, A),
    ("project-list", "GET"): (200, 200, 200, 200, 200, A),
    ("project-list", "POST"): (400, 403, 403, 403, 403, A),  # staff only
    ("project-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("project-detail", "PATCH"): (200, 200, 403, 403, 404, A),
    ("project-detail", "DELETE"): (204, 204, 403, 403, 404, A),
    ("member-list", "GET"): (200, 200, 200, 200, 404, A),
    ("member-list", "POST"): (400, 400, 403, 403, 404, A),
    ("member-detail", "PATCH"): (400, 400, 403, 403, 404, A),
    ("member-detail", "DELETE"): (204, 204, 403, 403, 404, A),
    ("project-stats", "GET"): (200, 200, 200, 200, 404, A),
    ("project-audit", "GET"): (200, 200, 403, 403, 404, A),
    ("image-list", "GET"): (200, 200, 200, 200, 404, A),
    ("image-list", "POST"): (400, 400, 403, 403, 404, A),
    ("image-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("image-detail", "PATCH"): (400, 400, 400, 403, 404, A),  # state: annotators too; {} changes nothing
    ("image-detail", "DELETE"): (204, 204, 403, 403, 404, A),
    ("image-file", "GET"): (200, 200, 200, 200, 404, A),
    # 202 + placeholder: thumbnails are made by a task after the upload (not run here).
    ("image-thumbnail", "GET"): (202, 202, 202, 202, 404, A),
    # Signed file links answer by their signature alone: none here, so everyone is refused.
    ("signed-file", "GET"): (403, 403, 403, 403, 403, 403),
    ("image-annotations", "GET"): (200, 200, 200, 200, 404, A),
    ("image-annotations", "PUT"): (400, 400, 400, 403, 404, A),
    ("image-mask", "GET"): (200, 200, 200, 200, 404, A),
    ("label-class-list", "GET"): (200, 200, 200, 200, 404, A),
    ("label-class-list", "POST"): (400, 400, 403, 403, 404, A),
    ("label-class-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("label-class-detail", "PATCH"): (200, 200, 403, 403, 404, A),
    ("label-class-detail", "DELETE"): (409, 409, 403, 403, 404, A),  # in use by polygons
    ("import-list", "GET"): (200, 200, 403, 403, 404, A),
    ("import-list", "POST"): (415, 415, 403, 403, 404, A),  # multipart only
    ("video-import", "POST"): (415, 415, 403, 403, 404, A),  # multipart only
    ("export-list", "GET"): (200, 200, 200, 403, 404, A),
    ("export-list", "POST"): (400, 400, 400, 403, 404, A),  # {} names no format
    ("export-download", "GET"): (200, 200, 200, 403, 404, A),
    ("pipeline-list", "GET"): (200, 200, 200, 200, 200, A),
    ("job-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("job-cancel", "POST"): (409, 409, 403, 403, 404, A),  # already finished
    ("project-job-list", "GET"): (200, 200, 200, 200, 404, A),
    ("training-jobs", "GET"): (200, 200, 200, 200, 404, A),
    ("training-jobs", "POST"): (400, 400, 403, 403, 404, A),
    ("inference-jobs", "POST"): (201, 201, 403, 403, 404, A),
    ("model-version-list", "GET"): (200, 200, 200, 200, 404, A),
    ("review-queue", "GET"): (200, 200, 200, 200, 404, A),
    ("review-queue-next", "POST"): (200, 200, 403, 200, 404, A),  # inspectors and admins are handed items
    ("retrain-policy", "GET"): (200, 200, 403, 403, 404, A),
    ("retrain-policy", "PUT"): (200, 200, 403, 403, 404, A),
    ("retrain-policy", "PATCH"): (200, 200, 403, 403, 404, A),
    ("model-version-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("model-version-detail", "PATCH"): (400, 400, 403, 403, 404, A),
    ("model-version-activate", "POST"): (200, 200, 403, 403, 404, A),
    ("prediction-detail", "GET"): (200, 200, 200, 200, 404, A),
    ("prediction-heatmap", "GET"): (200, 200, 200, 200, 404, A),
    ("prediction-class-map", "GET"): (404, 404, 404, 404, 404, A),  # the matrix's model is not semantic: no class map
    ("prediction-class-mask", "GET"): (404, 404, 404, 404, 404, A),  # nor a rail model: no rail mask
    ("prediction-review", "POST"): (400, 400, 403, 400, 404, A),  # inspectors and admins review
    ("image-predictions", "GET"): (200, 200, 200, 200, 404, A),
    ("model-version-evaluate", "POST"): (201, 201, 403, 403, 404, A),  # an evaluation job on the test split
    ("metric-catalogue", "GET"): (200, 200, 200, 200, 200, A),  # names and directions, no project data
    # Undo: only the reviewer (the inspector) takes a verdict back; others who may review get 400.
    ("review-detail", "DELETE"): (400, 400, 403, 200, 404, A),
    # Labelling aids and the annotation queue: annotators and admins; {} names no strokes, box or point.
    ("annotation-paint", "POST"): (400, 400, 400, 403, 404, A),
    ("annotation-box", "POST"): (400, 400, 400, 403, 404, A),
    ("annotation-superpixel", "POST"): (400, 400, 400, 403, 404, A),
    ("annotation-queue", "GET"): (200, 200, 200, 403, 404, A),
    ("model-version-artifact", "GET"): (200, 200, 403, 403, 404, A),  # the model file: admins
}


def api_endpoints() -> list[tuple[str, str, type]]:
    """(url name, route, view class) of every pattern under /api/."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                route = prefix + str(pattern.pattern)
                if route.startswith("api/"):
                    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
                    found.append((pattern.name, route, view))

    walk(get_resolver().url_patterns, "")
    return found


def methods_of(view) -> list[str]:
    return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def test_every_endpoint_has_a_row():
    declared = {(name, method) for name, _route, view in api_endpoints() for method in methods_of(view)}
    assert declared - set(MATRIX) == set(), "endpoints without a row in MATRIX"
    assert set(MATRIX) - declared == set(), "rows for endpoints that no longer exist"


def _url(name: str, route: str, targets: dict) -> str:
    from django.urls import reverse

    kwargs = {}
    for key in ("project_id", "user_id", "image_id", "label_class_id", "job_id"):
        if f"<int:{key}>" in route or f"(?P<{key}>" in route:
            kwargs[key] = targets[key]
    if "<str:name>" in route:
        kwargs["name"] = "0" * 64  # a blob key
    if "pk" in route:
        prefix = route.split("/")[1].lstrip("^")
        kwargs["pk"] = {"projects": targets["project_id"], "jobs": targets["training_job"], "images": targets["image_id"],
                        "model-versions": targets["model_version"], "predictions": targets["prediction"],
                        "reviews": targets["review"]}[prefix]
    return reverse(name, kwargs=kwargs)


def test_every_endpoint_answers_every_persona_as_the_table_says(clients, targets, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    mismatches = []
    for name, route, view in api_endpoints():
        url = _url(name, route, targets)
        for method in methods_of(view):
            expected = MATRIX[(name, method)]
            for persona, status in zip(PERSONAS, expected):
                with transaction.atomic():
                    response = clients[persona].generic(method, url, "{}" if method != "GET" else "",
                                                        content_type="application/json")
                    got = response.status_code
                    if getattr(response, "streaming", False):
                        # Read through the test client's wrapper, which closes the response without
                        # closing the test's database connection.
                        b"".join(response.streaming_content)
                    transaction.set_rollback(True)
                if got != status:
                    mismatches.append(f"{method} {url} as {persona}: {got}, expected {status}")
    assert not mismatches, "\n".join(mismatches)

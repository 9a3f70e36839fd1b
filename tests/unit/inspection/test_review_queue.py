"""The review queue stays cheap with many predictions: a fixed number of queries whatever
the page holds, and each item's newest verdict."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inspection.models import Prediction, Review

pytestmark = pytest.mark.django_db


def test_the_queue_costs_the_same_queries_for_any_page_and_shows_the_newest_verdict(trained, project, charlie, charlie_api):
    url = f"/api/projects/{project.pk}/review-queue/"
    with CaptureQueriesContext(connection) as empty_reviews:
        assert charlie_api.get(url).status_code == 200
    predictions = list(Prediction.objects.filter(model_version=trained[0]))
    for prediction in predictions:
        Review.objects.create(prediction=prediction, reviewer=charlie, verdict="unsure")
        Review.objects.create(prediction=prediction, reviewer=charlie, verdict="anomaly")
    with CaptureQueriesContext(connection) as all_reviewed:
        body = charlie_api.get(url).json()
    assert len(all_reviewed) == len(empty_reviews)  # no query per item
    assert len(body["results"]) == len(predictions)
    assert {(item["reviewed"], item["verdict"]) for item in body["results"]} == {(True, "anomaly")}

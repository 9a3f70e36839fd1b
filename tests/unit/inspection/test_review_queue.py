"""The review queue stays cheap with many predictions: a fixed number of queries whatever
the page holds, and each item's newest verdict."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.test.utils import CaptureQueriesContext

from inspection.models import Prediction
from inspection.services.reviews import review_create, review_undo

pytestmark = pytest.mark.django_db


def test_the_queue_costs_the_same_queries_for_any_page_and_shows_the_newest_verdict(trained, project, charlie, charlie_api):
    url = f"/api/projects/{project.pk}/review-queue/"
    with CaptureQueriesContext(connection) as empty_reviews:
        assert charlie_api.get(url).status_code == 200
    predictions = list(Prediction.objects.filter(model_version=trained[0]))
    for prediction in predictions:
        review_create(prediction=prediction, reviewer=charlie, verdict="unsure")
        review_create(prediction=prediction, reviewer=charlie, verdict="anomaly")
    with CaptureQueriesContext(connection) as all_reviewed:
        body = charlie_api.get(url).json()
    assert len(all_reviewed) == len(empty_reviews)  # no query per item
    assert len(body["results"]) == len(predictions)
    assert {(item["reviewed"], item["verdict"]) for item in body["results"]} == {(True, "anomaly")}


def test_an_undo_puts_the_previous_verdict_back_in_the_queue(trained, project, charlie, charlie_api):
    url = f"/api/projects/{project.pk}/review-queue/"
    prediction = Prediction.objects.filter(model_version=trained[0]).first()
    review_create(prediction=prediction, reviewer=charlie, verdict="unsure")
    newest = review_create(prediction=prediction, reviewer=charlie, verdict="anomaly")
    assert _item(charlie_api.get(url, {"verdict": "anomaly"}).json(), prediction)["verdict"] == "anomaly"

    review_undo(review=newest, user=charlie)
    assert _item(charlie_api.get(url, {"verdict": "unsure"}).json(), prediction)["verdict"] == "unsure"
    assert _item(charlie_api.get(url, {"verdict": "anomaly"}).json(), prediction) is None

    review_undo(review=prediction.reviews.get(), user=charlie)
    unreviewed = charlie_api.get(url, {"reviewed": "false"}).json()
    assert _item(unreviewed, prediction) == {**_item(unreviewed, prediction), "reviewed": False, "verdict": None}


def _item(body: dict, prediction: Prediction) -> dict | None:
    return next((item for item in body["results"] if item["id"] == prediction.pk), None)


def test_prediction_fast_representation_matches_the_fields(trained, charlie):
    """The hand-built body equals DRF's field-by-field one, for a reviewed and an unreviewed prediction."""
    from rest_framework import serializers

    from inspection.api.serializers import PredictionSerializer

    first, second = Prediction.objects.filter(model_version=trained[0]).select_related("image", "model_version")[:2]
    review_create(prediction=first, reviewer=charlie, verdict="anomaly")
    for prediction in (Prediction.objects.select_related("image", "model_version").get(pk=p.pk) for p in (first, second)):
        fast = PredictionSerializer(prediction).data
        slow = serializers.ModelSerializer.to_representation(PredictionSerializer(), prediction)
        assert fast == slow
        assert list(fast) == PredictionSerializer.Meta.fields


def test_next_hands_each_reviewer_a_different_item_and_a_verdict_releases_it(trained, project, alice, charlie, alice_api, charlie_api, settings):
    """Two reviewers on one queue: "next" never gives both the same prediction; asking again
    answers the held one; a verdict moves on; a hold that runs out is handed out again."""
    url = f"/api/projects/{project.pk}/review-queue/next"
    queue = charlie_api.get(f"/api/projects/{project.pk}/review-queue/", {"reviewed": "false"}).json()["results"]
    first, second = (charlie_api.post(url).json(), alice_api.post(url).json())
    assert first["prediction"]["id"] == queue[0]["id"]  # the queue's order: flagged first, by score
    assert second["prediction"]["id"] == queue[1]["id"]  # not the one charlie holds
    assert charlie_api.post(url).json()["prediction"]["id"] == queue[0]["id"]  # a reload keeps it

    verdict = charlie_api.post(f"/api/predictions/{queue[0]['id']}/review", {"verdict": "unsure"}, format="json")
    assert verdict.status_code == 201
    third = charlie_api.post(url).json()["prediction"]
    assert third["id"] == queue[2]["id"]  # queue[1] is still alice's

    # alice walks away: once her hold has run out, her item is handed out again.
    Prediction.objects.filter(pk=queue[1]["id"]).update(claimed_until=timezone.now() - timedelta(seconds=1))
    review_create(prediction=Prediction.objects.get(pk=third["id"]), reviewer=charlie, verdict="normal")
    assert charlie_api.post(url).json()["prediction"]["id"] == queue[1]["id"]


def test_next_answers_null_when_the_queue_is_done_and_refuses_annotators(trained, project, bob_api, charlie, charlie_api):
    url = f"/api/projects/{project.pk}/review-queue/next"
    for prediction in Prediction.objects.filter(model_version=trained[0]):
        review_create(prediction=prediction, reviewer=charlie, verdict="unsure")
    assert charlie_api.post(url).json() == {"prediction": None, "claimed_until": None}
    refused = bob_api.post(url)
    assert refused.status_code == 403 and "review" in refused.json()["error"]

"""Two inspectors on the shared review queue in their browsers: each is shown a different
image (the server holds one for each), and a verdict moves each on to an image the other
does not have."""
from __future__ import annotations

import time

import pytest

from tests.e2e.data import synthetic_images, train_and_predict

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _shown(page) -> str:
    page.wait_for_selector("#review-stage[data-ready=true]")
    return page.locator("#review-stage").get_attribute("data-prediction-id")


def _team_queue(b, project, username: str) -> str:
    """Switch the review page to the shared queue; the image it then shows is the one held for the user."""
    from inspection.models import Prediction

    b.goto(f"/projects/{project.pk}/review/")
    b.page.wait_for_selector("#review-stage[data-ready=true]")
    b.page.select_option("#queue-filter", "team")
    deadline = time.monotonic() + 15
    while not (held := list(Prediction.objects.filter(claimed_by__username=username).values_list("pk", flat=True))):
        assert time.monotonic() < deadline, f"nothing was held for {username}"
        time.sleep(0.1)
    assert len(held) == 1
    b.page.wait_for_function("id => document.querySelector('#review-stage').dataset.predictionId === id", arg=str(held[0]))
    return _shown(b.page)


def test_two_reviewers_on_the_shared_queue_never_see_the_same_image(open_page, project, alice, charlie):
    from inspection.models import Prediction, Review

    synthetic_images(project, alice, train_normal=8, test_normal=3, test_anomalous=4, size=64)
    train_and_predict(project, alice)

    inspector, admin = open_page(), open_page()
    inspector.login("charlie")
    admin.login("alice")
    first = _team_queue(inspector, project, "charlie")
    other = _team_queue(admin, project, "alice")
    assert first != other
    held = dict(Prediction.objects.filter(claimed_by__isnull=False).values_list("pk", "claimed_by__username"))
    assert held == {int(first): "charlie", int(other): "alice"}

    inspector.page.keyboard.press("n")  # verdict "normal", then the next free image
    inspector.page.wait_for_function(
        "id => { const s = document.querySelector('#review-stage'); return s.dataset.ready === 'true' && s.dataset.predictionId !== id; }",
        arg=first,
    )
    second = _shown(inspector.page)
    assert second not in (first, other)
    assert Review.objects.get(prediction_id=int(first)).verdict == "normal"
    inspector.check_clean()
    admin.check_clean()

"""The jobs page of a project: every kind of job with who, when, how long, one progress bar,
how it ended and what it did in words of its kind; filters by kind and status."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.conftest import WIDE
from tests.e2e.data import synthetic_images, train_and_predict

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_jobs_page_lists_filters_and_explains_jobs(open_page, project, alice, charlie):
    from django.utils import timezone

    from inspection.models import Prediction
    from projects.models import Job

    synthetic_images(project, alice, train_normal=6, test_normal=2, test_anomalous=2)
    model_version = train_and_predict(project, alice)
    now = timezone.now()
    failed = Job.objects.create(
        project=project, kind="import", status="failed", stage="checking images", progress=0.4, requested_by=alice,
        error="broken.png: not an image file", started_at=now - timedelta(seconds=75), finished_at=now,
    )
    predicted = Prediction.objects.filter(model_version=model_version).count()
    flagged = Prediction.objects.filter(model_version=model_version, flagged=True).count()

    b = open_page(WIDE)
    b.login("charlie")  # an inspector reads jobs too
    page = b.page
    b.goto(f"/projects/{project.pk}/")
    page.click("nav a[data-nav=jobs]")
    page.wait_for_selector("#jobs-table")
    rows = page.locator("#jobs-table tbody tr")
    # training, the inference its activation started, the inference run after it, the failed import
    assert rows.count() == 4 and page.inner_text("#jobs-count") == "4 jobs"
    assert page.get_attribute("#jobs-table tbody tr >> nth=0", "data-job-id") == str(failed.pk), "newest first"

    inference = page.locator("#jobs-table tr[data-status=succeeded]", has_text="inference").first
    assert f"Predicted {predicted} images, {flagged} flagged for review." in inference.inner_text()
    assert "Model version" not in inference.inner_text()
    training = page.locator("#jobs-table tr", has_text="training")
    assert "Model version v1 created." in training.inner_text()
    assert "done · 100%" in training.inner_text(), "a finished job's stage is shown as finished"
    assert "alice" in training.inner_text()
    failed_row = page.locator(f"#jobs-table tr[data-job-id='{failed.pk}']")
    assert "failed during checking images" in failed_row.inner_text()
    assert "broken.png: not an image file" in failed_row.inner_text()
    assert "1m 15s" in failed_row.inner_text()
    b.screenshot("jobs")
    b.check_labelled()

    page.select_option("#jobs-kind", "inference")
    page.wait_for_function("() => document.querySelector('#jobs-count').textContent === '2 jobs'")
    assert "kind=inference" in page.url
    page.select_option("#jobs-kind", "")
    page.select_option("#jobs-status", "failed")
    page.wait_for_function("() => document.querySelector('#jobs-count').textContent === '1 job'")
    page.select_option("#jobs-status", "cancelled")
    page.wait_for_selector("#jobs >> text=No job matches these filters.")

    # A job's own page says the same, and leads back to the list.
    page.select_option("#jobs-status", "")
    page.wait_for_function("() => document.querySelector('#jobs-count').textContent === '4 jobs'")
    page.click("#jobs-table tr:has-text('inference') a >> nth=0")
    page.wait_for_selector("#job-summary[data-status=succeeded]")
    assert f"Predicted {predicted} images" in page.inner_text("#job-summary")
    assert "done" in page.inner_text("#job-summary")
    page.click("text=All jobs of this project")
    page.wait_for_selector("#jobs-table")
    b.check_clean()

"""Admin in the browser: launch a training on tiny synthetic data through the form built
from the pipeline's schema, watch the job reach 100% on a real Celery worker, see the
new model version's metrics and curves, activate it."""
from __future__ import annotations

import pytest

from tests.e2e.data import FAST_PATCHCORE, synthetic_images

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_train_watch_compare_activate(open_page, project, alice, celery_worker):
    from inspection.models import ModelVersion, RetrainPolicy

    synthetic_images(project, alice, train_normal=8, test_normal=3, test_anomalous=3)
    b = open_page()
    b.login("alice")
    page = b.page
    b.goto(f"/projects/{project.pk}/training/")
    page.select_option("#pipeline", "patchcore")
    page.wait_for_selector("#cfg-image_size")
    assert page.input_value("#cfg-image_size") == "256", "defaults come from the schema"

    # A value the schema refuses is shown at its field and nothing is launched.
    page.fill("#cfg-image_size", "8")
    page.click("#launch")
    assert "at least 32" in page.inner_text("#cfg-image_size-error")

    # A value only the server can judge: its message appears at the field it names.
    page.fill("#cfg-image_size", "64")
    page.fill("#cfg-layers", "block4, block4")
    page.click("#launch")
    page.wait_for_function("() => document.querySelector('#cfg-layers-error').textContent.includes('twice')")
    assert page.get_attribute("#cfg-layers", "aria-invalid") == "true"
    page.fill("#cfg-layers", "block4, block10")

    for key, value in FAST_PATCHCORE.items():
        selector = f"#cfg-{key}"
        if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
            page.select_option(selector, str(value))
        else:
            page.fill(selector, str(value))
    # The retraining policy is saved from the same page.
    page.check("#policy-enabled")
    page.fill("#policy-min-new", "5")
    page.click("#retrain-policy button[type=submit]")
    page.wait_for_selector("#retrain-policy >> text=Policy saved.")
    policy = RetrainPolicy.objects.get(project=project)
    assert (policy.enabled, policy.min_new_labels) == (True, 5)
    b.screenshot("training")
    b.check_labelled()
    page.click("#launch")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-summary[data-status=running], #job-summary[data-status=succeeded]", timeout=60_000)
    b.screenshot("job-running")
    page.wait_for_selector("#job-summary[data-status=succeeded]", timeout=180_000)
    assert page.get_attribute("#job-summary", "data-progress") == "1"
    assert "100%" in page.inner_text("#job-summary")
    assert "done" in page.inner_text("#job-log")
    b.screenshot("job-done")

    page.click("#job-model-link")
    page.wait_for_selector("#versions-table")
    page.wait_for_selector("#charts")
    b.screenshot("models")
    table = page.inner_text("#versions-table")
    assert "v1" in table and "patchcore" in table and "Image AUROC" in table
    # The AUROC's interval over the evaluated images, in the rows right below it.
    metrics = page.locator("#versions-table tr[data-metric]").evaluate_all("rows => rows.map(r => r.dataset.metric)")
    assert metrics[:3] == ["image_auroc", "image_auroc_low", "image_auroc_high"]
    assert "95% interval: low" in page.inner_text("#versions-table tr[data-metric=image_auroc_low] th")
    assert page.locator("#charts svg").count() == 3
    b.check_labelled()
    assert page.locator("#charts path.chart-line[data-series=image]").count() == 2, "image ROC and PR curves drawn"
    assert page.locator("#charts line.chart-threshold").count() == 1, "threshold marked on the histogram"

    page.click("#activate")
    page.wait_for_selector("#versions-table .badge.active")
    page.wait_for_selector("#activate:disabled")  # the detail was redrawn for the active version
    assert ModelVersion.objects.get(project=project).is_active

    # A new threshold: typed, applied, stored (the histogram's marker follows it live).
    new_threshold = round(ModelVersion.objects.get(project=project).threshold * 1.5, 3)
    page.fill("#threshold-slider-value", str(new_threshold))
    assert f"threshold {new_threshold}" in page.text_content("#charts .threshold-label")
    page.click("#threshold-apply")
    page.wait_for_selector("#toasts >> text=Thresholds of v1 set")
    assert ModelVersion.objects.get(project=project).threshold == pytest.approx(new_threshold)
    b.check_clean(allow=("status of 400",))  # the refused config


def test_a_preset_fills_the_form_and_the_training_curves_are_shown_live_and_kept(open_page, project, alice, celery_worker):
    from inspection.models import ModelVersion

    synthetic_images(project, alice, train_normal=10, test_normal=3, test_anomalous=3)
    b = open_page()
    b.login("alice")
    page = b.page
    b.goto(f"/projects/{project.pk}/training/")
    page.select_option("#pipeline", "dfr")
    page.wait_for_selector("#cfg-max_steps")
    assert page.input_value("#cfg-max_steps") == "8000" and page.input_value("#cfg-image_size") == "256"
    page.select_option("#preset", "fast")
    page.wait_for_function("() => document.querySelector('#cfg-max_steps').value === '600'")
    assert page.input_value("#cfg-image_size") == "128", "the preset's values fill the fields"
    assert "quick look" in page.inner_text("#preset-description")
    page.fill("#cfg-image_size", "64")
    page.fill("#cfg-max_steps", "60")
    page.fill("#cfg-val_every", "10")
    page.click("#launch")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-summary[data-status=succeeded]", timeout=180_000)
    page.wait_for_selector("#job-training #training-summary")
    assert "60 steps" in page.inner_text("#job-training #training-summary")
    assert page.locator("#job-training svg").count() == 2, "loss and validation curves"
    b.screenshot("job-training-curves")

    version = ModelVersion.objects.get(project=project)
    assert version.preset == "fast" and version.config["max_steps"] == 60
    assert version.training["steps"] == 60 and version.training["validation"] == "held back"
    page.click("#job-model-link")
    page.wait_for_selector("#training-summary")
    summary = page.inner_text("#training-summary")
    assert "60 steps" in summary and "validation images: held back" in summary
    assert page.locator("#training-charts svg").count() == 2
    b.screenshot("model-training-curves")
    b.check_clean()

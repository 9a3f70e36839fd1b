"""Two thresholds in the browser (image: which images are flagged; region: which pixels are
outlined), both reachable on sliders that mark the model's values, on the model-version page
and in review; a verdict taken back with Ctrl+Z; the queue-done panel over the image."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import WIDE
from tests.e2e.data import synthetic_images, train_and_predict

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def control(page, name: str) -> dict:
    """The data attributes of a threshold control: min, max, model, value (floats)."""
    data = page.eval_on_selector(f"[data-threshold='{name}']", "n => ({...n.dataset})")
    return {k: float(data[k]) for k in ("min", "max", "model", "value")}


def test_image_and_region_thresholds_on_the_model_page_and_in_review(open_page, project, alice, charlie):
    from inspection.models import ModelVersion, Prediction

    synthetic_images(project, alice, train_normal=10, test_normal=3, test_anomalous=5)
    model_version = train_and_predict(project, alice)
    # Calibrated apart: the region one on the normal images' pixels (no annotated validation
    # images here, so the accepted pixel FPR of DFR III-D), the image one on their maxima.
    assert model_version.region_threshold != model_version.threshold
    assert "pixel FPR" in model_version.region_threshold_policy

    admin = open_page(WIDE)
    admin.login("alice")
    page = admin.page
    admin.goto(f"/projects/{project.pk}/models/")
    page.wait_for_selector("#thresholds [data-threshold='region-threshold-slider']")
    image, region = control(page, "threshold-slider"), control(page, "region-threshold-slider")
    assert image["model"] == pytest.approx(model_version.threshold)
    assert region["model"] == pytest.approx(model_version.region_threshold)
    for found in (image, region):
        assert found["min"] <= found["model"] <= found["max"], "the slider reaches the model's value"
        assert found["value"] == pytest.approx(found["model"])
    assert page.is_visible("[data-threshold='region-threshold-slider'] .slider-mark")
    assert "Region threshold" in page.inner_text("#row-region-threshold")
    admin.screenshot("models-two-thresholds")
    admin.check_labelled()

    # Raise only the region threshold: regions shrink, flags stay.
    flags_before = set(Prediction.objects.filter(flagged=True).values_list("pk", flat=True))
    region_pixels_before = sum(len(p) for p in Prediction.objects.values_list("polygons", flat=True))
    new_region = round(model_version.region_threshold + 0.6 * (region["max"] - model_version.region_threshold), 3)
    page.fill("#region-threshold-slider-value", str(new_region))
    page.click("#threshold-apply")
    page.wait_for_selector("#toasts >> text=Thresholds of v1 set")
    model_version.refresh_from_db()
    assert model_version.region_threshold == pytest.approx(new_region) and model_version.region_threshold_policy == "manual"
    assert set(Prediction.objects.filter(flagged=True).values_list("pk", flat=True)) == flags_before
    # The regions are redrawn by a job at the new region threshold (no worker here: run it now).
    from inspection.services.model_versions import predictions_redraw_run
    from projects.models import Job

    redraw = Job.objects.filter(kind="redraw").latest("pk")
    assert redraw.params["region_threshold"] == pytest.approx(new_region)
    assert predictions_redraw_run(job_id=redraw.pk).status == "succeeded"
    assert sum(len(p) for p in Prediction.objects.values_list("polygons", flat=True)) <= region_pixels_before
    admin.check_clean()

    # In review: the region slider starts at the model's region threshold, the image one at its
    # image threshold; both reach them whatever this image's map range is.
    b = open_page(WIDE)
    b.login("charlie")
    page = b.page
    b.goto(f"/projects/{project.pk}/review/")
    page.wait_for_selector("#review-stage[data-ready=true]")
    region, image = control(page, "threshold"), control(page, "image-threshold")
    assert region["model"] == pytest.approx(new_region) and region["value"] == pytest.approx(new_region)
    assert image["model"] == pytest.approx(model_version.threshold)
    for found in (region, image):
        assert found["min"] <= found["model"] <= found["max"]
    stage = page.locator("#review-stage")
    at_model = int(stage.get_attribute("data-region-pixels"))
    page.focus("#threshold")
    page.keyboard.press("Home")
    assert int(stage.get_attribute("data-region-pixels")) > at_model
    page.click("#threshold-reset")
    assert int(stage.get_attribute("data-region-pixels")) == at_model
    # The image threshold says whether this image would be flagged at the chosen value.
    score = float(Prediction.objects.get(pk=int(stage.get_attribute("data-prediction-id"))).score)
    page.fill("#image-threshold-value", str(score + 1))
    assert page.get_attribute("#flag-at-threshold", "data-flagged") == "false"
    page.fill("#image-threshold-value", str(score - 1))
    assert page.get_attribute("#flag-at-threshold", "data-flagged") == "true"
    assert page.locator("#thresholds-apply").count() == 0, "an inspector cannot store thresholds"
    b.screenshot("review-two-thresholds")
    b.check_labelled()
    b.check_clean()


def test_verdict_shows_pressed_undo_with_ctrl_z_and_queue_done_panel(open_page, project, alice, charlie):
    from inspection.models import Prediction, Review
    from projects.models import Image

    synthetic_images(project, alice, train_normal=4, test_normal=1, test_anomalous=2)
    train_and_predict(project, alice)
    total = Prediction.objects.count()

    b = open_page(WIDE)
    b.login("charlie")
    page = b.page
    b.goto(f"/projects/{project.pk}/review/")
    page.wait_for_selector("#review-stage[data-ready=true]")
    first = int(page.get_attribute("#review-stage", "data-prediction-id"))
    image = Prediction.objects.get(pk=first).image
    state_before = (image.split, image.state)
    button_box = page.locator("#verdict-normal").bounding_box()

    page.locator("canvas[data-layer=shapes]").focus()
    page.keyboard.press("n")
    page.wait_for_function("id => document.querySelector('#review-stage').dataset.predictionId !== String(id)", arg=first)
    assert Review.objects.get(prediction_id=first).verdict == "normal"
    assert Image.objects.get(pk=image.pk).state == "normal"

    # Back: the chosen verdict's button looks pressed, and nothing moved.
    page.keyboard.press("k")
    page.wait_for_function("id => document.querySelector('#review-stage').dataset.predictionId === String(id)", arg=first)
    assert page.get_attribute("#verdict-normal", "aria-pressed") == "true"
    assert page.get_attribute("#verdict-anomaly", "aria-pressed") == "false"
    pressed_bg = page.eval_on_selector("#verdict-normal", "b => getComputedStyle(b).backgroundColor")
    plain_bg = page.eval_on_selector("#verdict-anomaly", "b => getComputedStyle(b).backgroundColor")
    assert pressed_bg != plain_bg, "the chosen verdict looks different"
    assert page.locator("#verdict-normal").bounding_box() == button_box, "the buttons did not shift"
    b.screenshot("review-verdict-pressed")

    # Ctrl+Z takes the verdict back: no review row, the image back in its split and state.
    page.keyboard.press("j")
    page.keyboard.press("Control+z")
    page.wait_for_function("id => document.querySelector('#review-stage').dataset.lastUndo === String(id)", arg=first)
    assert current_id(page) == first
    assert not Review.objects.filter(prediction_id=first).exists()
    image.refresh_from_db()
    assert (image.split, image.state) == state_before
    assert page.get_attribute("#verdict-normal", "aria-pressed") == "false"

    # Verdicts on every image: the last one opens the queue-done panel, above the image.
    for step in range(total):
        before = current_id(page)
        page.keyboard.press("u")
        if step < total - 1:
            page.wait_for_function("id => document.querySelector('#review-stage').dataset.predictionId !== String(id)", arg=before)
    page.wait_for_selector("#queue-done:not([hidden])")
    assert Review.objects.count() == total
    on_top = page.evaluate(
        """() => { const r = document.querySelector('#queue-done').getBoundingClientRect();
                   const hit = document.elementFromPoint(r.left + r.width / 2, r.top + 12);
                   return document.querySelector('#queue-done').contains(hit); }"""
    )
    assert on_top, "the queue-done panel is drawn over the image, not behind it"
    assert "Queue done" in page.inner_text("#queue-done")
    b.screenshot("review-queue-done")
    b.check_clean()


def current_id(page) -> int:
    return int(page.get_attribute("#review-stage", "data-prediction-id"))

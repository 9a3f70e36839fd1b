"""Inspector in the browser: the review queue with a real model's heatmaps; verdicts by
keyboard advance the queue and are stored; the heatmap overlay is visible and the
threshold slider redraws the region; switching images is measured (median of 20)."""
from __future__ import annotations

import statistics
import time

import pytest

from tests.e2e.conftest import record_timing
from tests.e2e.data import synthetic_images, train_and_predict

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SWITCHES = 20
IMAGE_SIZE = 256


def current(page) -> str:
    return page.locator("#review-stage").get_attribute("data-prediction-id")


def wait_shown_other_than(page, prediction_id: str):
    page.wait_for_function(
        "id => { const s = document.querySelector('#review-stage'); return s.dataset.ready === 'true' && s.dataset.predictionId !== id; }",
        arg=prediction_id,
    )


def test_review_queue_by_keyboard_with_heatmap(open_page, project, alice, charlie):
    from inspection.models import Prediction, Review

    # 256 px images (heatmaps at image resolution) so the switching figure means something;
    # the model still works at 64 px, so training takes seconds.
    synthetic_images(project, alice, train_normal=10, test_normal=4, test_anomalous=10, size=IMAGE_SIZE)
    train_and_predict(project, alice)  # 24 predictions, flagged ones first in the queue

    b = open_page()
    b.login("charlie")
    page = b.page
    b.goto(f"/projects/{project.pk}/")
    page.wait_for_selector("#counts")
    b.screenshot("dashboard-inspector")
    # The image browser's "flagged" filter shows what the active model flagged.
    flagged = Prediction.objects.filter(image__project=project, flagged=True).count()
    assert 0 < flagged < 24
    b.goto(f"/projects/{project.pk}/images/?flagged=true")
    page.wait_for_selector("#image-grid .thumb")
    assert page.locator("#image-grid .thumb").count() == flagged
    assert page.locator("#image-grid .badge.flagged").count() == flagged
    page.click("nav a[data-nav=review]")
    page.wait_for_selector("#review-stage[data-ready=true]")

    # The heatmap is its own layer: the drawn pixels change when it is hidden.
    stage = page.locator("#review-stage")
    with_heatmap = stage.screenshot()
    page.keyboard.press("h")
    assert not page.is_checked("#show-heatmap")
    without_heatmap = stage.screenshot()
    assert with_heatmap != without_heatmap, "heatmap overlay changes nothing on screen"
    page.keyboard.press("h")
    overlay_alpha = page.evaluate(
        """() => { const c = document.querySelector('canvas[data-layer=overlay]');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert overlay_alpha > 1000, "the overlay canvas is empty"

    # Zoom (wheel) and pan (drag) move the overlay with the image: the drawn areas of both
    # layers keep the same bounds.
    def layer_bounds():
        return page.evaluate(
            """() => ['image', 'overlay'].map(name => {
                 const c = document.querySelector(`canvas[data-layer=${name}]`);
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
                 for (let y = 0; y < c.height; y += 2) for (let x = 0; x < c.width; x += 2) {
                   if (d[(y * c.width + x) * 4 + 3] > 0) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
                 }
                 return [x0, y0, x1, y1];
               })"""
        )
    before = layer_bounds()
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.mouse.wheel(0, 200)  # zoom out: the image stays inside the stage, bounds are informative
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5, steps=4)
    page.mouse.up()
    image_bounds, overlay_bounds = layer_bounds()
    assert image_bounds == overlay_bounds, "overlay drifted from the image"
    assert image_bounds != before[0], "zoom/pan changed nothing"
    page.keyboard.press("f")  # fit again

    # Threshold slider: lowest value -> the whole image is the region; highest -> almost nothing.
    page.focus("#threshold")
    page.keyboard.press("Home")
    low = int(stage.get_attribute("data-region-pixels"))
    region_low = stage.screenshot()
    page.keyboard.press("End")
    high = int(stage.get_attribute("data-region-pixels"))
    region_high = stage.screenshot()
    assert low > high, (low, high)
    assert region_low != region_high
    page.click("#threshold-reset")
    b.screenshot("review")
    b.check_labelled()

    # Three verdicts by keyboard; each advances the queue.
    page.locator("canvas[data-layer=shapes]").focus()
    given = {}
    for key, verdict in (("a", "anomaly"), ("n", "normal"), ("u", "unsure")):
        before = current(page)
        page.keyboard.press(key)
        wait_shown_other_than(page, before)
        given[int(before)] = verdict
    assert page.inner_text("#queue-pos").startswith("4 /")
    stored = {r.prediction_id: r.verdict for r in Review.objects.filter(prediction_id__in=given)}
    assert stored == given
    assert all(r.reviewer_id == charlie.pk for r in Review.objects.filter(prediction_id__in=given))

    # Going back shows the verdict already given.
    page.keyboard.press("k")
    page.wait_for_function("() => document.querySelector('#verdict-now').textContent.includes('unsure')")
    page.keyboard.press("j")
    page.wait_for_selector("#review-stage[data-ready=true]")

    # Switching speed with the heatmap shown: K back to the start, then 20 x J.
    assert page.is_checked("#show-heatmap")
    page.evaluate("window.__review.switches = []")
    for _ in range(3):
        before = current(page)
        page.keyboard.press("k")
        wait_shown_other_than(page, before)
    page.evaluate("window.__review.switches = []")
    wall = []
    for _ in range(SWITCHES):
        before = current(page)
        started = time.perf_counter()
        page.keyboard.press("j")
        wait_shown_other_than(page, before)
        wall.append((time.perf_counter() - started) * 1000)
    in_page = page.evaluate("window.__review.switches")
    assert len(in_page) == SWITCHES
    record_timing("review_next_image_ms", {
        "switches": SWITCHES,
        "image_px": f"{IMAGE_SIZE}x{IMAGE_SIZE}",
        "median_in_page": round(statistics.median(in_page), 2),
        "median_wall_keypress_to_drawn": round(statistics.median(wall), 2),
        "max_in_page": round(max(in_page), 2),
    })

    # The "anomaly" verdict opened a draft annotation from the predicted region: the
    # annotator starts from it.
    first_anomaly = next(pid for pid, verdict in given.items() if verdict == "anomaly")
    image_id = Prediction.objects.get(pk=first_anomaly).image_id
    annotator = open_page()
    annotator.login("bob")
    annotator.goto(f"/projects/{project.pk}/images/{image_id}/annotate/")
    annotator.page.wait_for_selector("#annotate-stage[data-ready=true]")
    assert "made from the model's predicted region" in annotator.page.inner_text("#banner")
    assert int(annotator.page.get_attribute("#annotate-stage", "data-polygons")) >= 1
    annotator.screenshot("annotate-draft-from-prediction")
    annotator.check_clean()

    # The queue can be narrowed to what was already reviewed: exactly the three verdicts.
    page.select_option("#queue-filter", "reviewed")
    page.wait_for_function("() => document.querySelector('#queue-pos').textContent === '1 / 3'")
    b.check_clean()

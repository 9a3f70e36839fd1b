"""Road scenes end to end: a road-scene project with three known classes (sky, building, road)
and an unknown object, labelled with polygons, trains a tiny seg_ood model on a REAL Celery
worker; its review page shows the predicted class map and the anomaly heatmap as two layers
under one zoom/pan, and the model-version page its mIoU, per-class IoU and anomaly PR curve."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import BrowserPage
from tests.road_scenes import road_scene_project

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TINY_SEG_OOD = {"network": "enet", "image_size": 64, "image_height": 64, "max_steps": 40, "batch_size": 4,
                "warmup_steps": 1, "val_every": 3}


def _visible_pixels(page, layer: str) -> int:
    """Non-transparent pixels drawn on one of the viewer's canvases."""
    return page.evaluate(
        """layer => { const c = document.querySelector(`#review-stage canvas[data-layer=${layer}]`);
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
        layer,
    )


def test_road_scene_model_trains_on_a_worker_and_review_shows_class_map_and_anomaly_layers(
    browser, live_server, project, alice, charlie, celery_worker
):
    from inspection.models import ModelVersion, Prediction
    from inspection.services import inference, training
    from projects.models import Job

    data = road_scene_project(project=project, actor=alice, splits={"train": 6, "test": 4})
    unknown = data["classes"]["object"].index
    job = training.training_job_start(project=project, user=alice, pipeline="seg_ood",
                                      config={**TINY_SEG_OOD, "unknown_classes": [unknown]}, activate=True)
    job = celery_worker.wait_for_job(job.pk, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, (job.error, celery_worker.log()[-2000:])
    model_version = ModelVersion.objects.get(job=job)
    assert {"miou", "class_iou", "anomaly_auprc", "anomaly_fpr95"} <= set(model_version.metrics)
    job = inference.inference_job_start(project=project, user=alice, model_version=model_version)
    job = celery_worker.wait_for_job(job.pk, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert Prediction.objects.filter(model_version=model_version).exclude(class_map="").count() == 10

    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(20_000)
    try:
        b = BrowserPage(context.new_page(), live_server.url)
        b.login("charlie")
        page = b.page
        b.goto(f"/projects/{project.pk}/review/")
        page.wait_for_selector("#review-stage[data-ready=true]")
        page.wait_for_selector("#review-stage[data-class-map=shown]")
        assert page.is_visible("#class-map-controls")
        legend = page.inner_text("#class-legend")
        assert any(name in legend for name in ("sky", "building", "road"))

        # Two separate layers: the class map and the heatmap each draw their own canvas.
        classes_drawn = _visible_pixels(page, "classes")
        heat_drawn = _visible_pixels(page, "overlay")
        assert classes_drawn > 0 and heat_drawn > 0
        b.screenshot("road-review-both-layers")
        page.keyboard.press("h")
        b.screenshot("road-review-class-map")
        page.keyboard.press("h")
        page.keyboard.press("c")
        assert not page.is_checked("#show-class-map") and _visible_pixels(page, "classes") == 0
        assert _visible_pixels(page, "overlay") == heat_drawn  # the heatmap is untouched
        page.keyboard.press("c")
        assert _visible_pixels(page, "classes") == classes_drawn

        # One zoom for both layers: zooming in changes both by the same transform.
        page.keyboard.press("+")
        assert _visible_pixels(page, "classes") != classes_drawn or _visible_pixels(page, "overlay") != heat_drawn
        page.keyboard.press("f")

        # The threshold slider works on the anomaly map: raising it shrinks the predicted region
        # (to the map's maximum pixels at the top), and leaves the class map as it was.
        def region_at(end: str) -> int:
            page.eval_on_selector("#threshold", f"e => {{ e.value = e.{end}; e.dispatchEvent(new Event('input')); }}")
            return int(page.get_attribute("#review-stage", "data-region-pixels"))

        low, high = region_at("min"), region_at("max")
        assert low > 0.99 * 64 * 64 and high < low
        assert _visible_pixels(page, "classes") == classes_drawn
        b.check_labelled()
        b.check_clean()

        # The model-version page (admin) shows the road-scene metrics and the PR curve.
        admin = BrowserPage(context.new_page(), live_server.url)
        context.clear_cookies()
        admin.login("alice")
        admin.goto(f"/projects/{project.pk}/models/")
        admin.page.wait_for_selector("#road-metrics")
        assert admin.page.locator("#class-iou tbody tr").count() == 3
        assert admin.page.inner_text("#metric-miou") not in ("", "–")
        admin.screenshot("road-model-version")

        # The annotate page of a road scene: a coloured class picker (keys 1-9) and the
        # polygons filled by class as a translucent layer under the outlines.
        image = data["images"][0]
        admin.goto(f"/projects/{project.pk}/images/{image.pk}/annotate/")
        admin.page.wait_for_selector("#class-picker button")
        # The picker appears with the classes, before the image and its polygons have loaded
        # and been drawn: the stage says when they have.
        admin.page.wait_for_selector("#annotate-stage[data-ready=true]")
        assert admin.page.locator("#class-picker button").count() == 4
        admin.page.keyboard.press("3")
        assert admin.page.get_attribute("#class-picker button:nth-child(3)", "aria-pressed") == "true"
        fill = admin.page.evaluate(
            """() => { const c = document.querySelector('#annotate-stage canvas[data-layer=classes]');
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
        assert fill > 0
        admin.page.uncheck("#fill-by-class")
        admin.screenshot("road-annotate-outlines")
        admin.page.check("#fill-by-class")
        admin.screenshot("road-annotate-class-map")
        admin.check_labelled()
    finally:
        context.close()

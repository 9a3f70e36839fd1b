"""Labelling faster in the browser (1440x900): brush and eraser paint the polygons that are
saved (the saved mask's area within 2% of the painted discs), box-to-polygon outlines the
object in the box (within 2% of its area), every step undoes, the area readout matches the
server's mask, the mask preview has the image's aspect ratio, and the dashboard's "Images to
annotate" opens the queue in the order a label helps most, with the reasons."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.e2e.conftest import BrowserPage

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

W, H = 320, 180  # a 16:9 photo
RECT = (120, 60, 200, 120)  # x0, y0, x1, y1 of the dark object on the scene image


@pytest.fixture
def wide_page(browser, live_server):
    """A BrowserPage at 1440x900."""
    contexts = []

    def make() -> BrowserPage:
        context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return BrowserPage(context.new_page(), live_server.url)

    yield make
    for context in contexts:
        context.close()


def _scene_png(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(200, 8, (H, W, 3)), 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = RECT
    pixels[y0:y1, x0:x1] = np.clip(rng.normal(50, 8, (y1 - y0, x1 - x0, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(project, user, n=1, split="train", seed=0):
    from projects.services import image_upload

    files = [(f"scene_{seed + i:02d}.png", _scene_png(seed + i)) for i in range(n)]
    return image_upload(project=project, files=files, uploaded_by=user, split=split).created


def _screen(page, x: float, y: float) -> tuple[float, float]:
    """Screen position of image pixel (x, y): the editor fits the image centred at 98% (view_transform.fit)."""
    box = page.locator("#annotate-stage").bounding_box()
    scale = min(box["width"] / W, box["height"] / H) * 0.98
    return box["x"] + (box["width"] - W * scale) / 2 + x * scale, box["y"] + (box["height"] - H * scale) / 2 + y * scale


def _open_editor(b: BrowserPage, project, image):
    b.goto(f"/projects/{project.pk}/images/{image.pk}/annotate/")
    try:
        b.page.wait_for_selector("#annotate-stage[data-ready=true]")
    except Exception:
        raise AssertionError(f"the editor did not open: {b.errors}") from None
    return b.page


def _data(page, name: str) -> str:
    return page.locator("#annotate-stage").get_attribute(f"data-{name}")


def _idle(page, polygons: int | None = None):
    page.wait_for_selector("#annotate-stage[data-busy=false]")
    if polygons is not None:
        page.wait_for_selector(f"#annotate-stage[data-polygons='{polygons}']")


def _saved_mask_pixels(b: BrowserPage, image_id: int) -> int:
    response = b.api_get(f"/api/images/{image_id}/mask.png")
    assert response.ok
    return int((np.asarray(PILImage.open(io.BytesIO(response.body()))) > 0).sum())


def _save(page):
    page.click("#save")
    page.wait_for_selector("#save-state >> text=Saved · version")


def test_brush_and_eraser_paint_polygons_that_save_with_the_painted_area(wide_page, project, alice):
    image = _upload(project, alice)[0]
    b = wide_page()
    b.login("bob")
    page = _open_editor(b, project, image)
    # The mask preview keeps the photo's 16:9 shape.
    assert page.evaluate("[document.querySelector('#mask-preview').width, document.querySelector('#mask-preview').height]") == [240, 135]

    page.keyboard.press("b")
    assert page.get_attribute("#tool-brush", "aria-pressed") == "true"
    for _ in range(6):
        page.keyboard.press("]")
    radius = int(_data(page, "brush-radius"))
    assert radius > 12  # ] grows the brush
    page.mouse.move(*_screen(page, 100, 90))
    page.mouse.down()
    page.mouse.up()
    _idle(page, polygons=1)
    disc = math.pi * radius**2

    page.keyboard.press("e")
    for _ in range(4):
        page.keyboard.press("[")
    eraser = int(_data(page, "brush-radius"))
    assert eraser < radius
    page.mouse.move(*_screen(page, 100, 90))
    page.mouse.down()
    page.mouse.up()
    _idle(page, polygons=1)
    page.wait_for_selector("#polygon-list >> text=1 hole(s)")
    b.screenshot("annotate-brush-eraser")

    # The eraser was one undo step, and redo brings it back.
    page.keyboard.press("Control+z")
    page.wait_for_selector("#polygon-list li:not(:has-text('hole'))")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector("#polygon-list >> text=1 hole(s)")

    # A brush stroke (drag) paints a band across the disc: still one polygon (merged).
    page.keyboard.press("b")
    page.mouse.move(*_screen(page, 100 + radius - 5, 90))
    page.mouse.down()
    page.mouse.move(*_screen(page, 180, 90), steps=8)
    page.mouse.up()
    _idle(page, polygons=1)
    page.keyboard.press("Control+z")
    _idle(page, polygons=1)
    page.wait_for_selector("#polygon-list >> text=1 hole(s)")

    _save(page)
    expected = disc - math.pi * eraser**2
    saved = _saved_mask_pixels(b, image.pk)
    assert abs(saved - expected) / expected < 0.02, (saved, expected)
    shown = int(_data(page, "mask-area"))
    assert abs(shown - saved) / saved < 0.02, (shown, saved)  # the readout is the server's mask, not a shoelace area
    b.check_labelled()
    b.check_clean()


def test_box_to_polygon_outlines_the_object(wide_page, project, alice):
    image = _upload(project, alice, seed=5)[0]
    b = wide_page()
    b.login("bob")
    page = _open_editor(b, project, image)
    page.click("#tool-box")
    x0, y0, x1, y1 = RECT
    page.mouse.move(*_screen(page, x0 - 14, y0 - 12))
    page.mouse.down()
    page.mouse.move(*_screen(page, (x0 + x1) / 2, (y0 + y1) / 2), steps=4)
    page.mouse.move(*_screen(page, x1 + 14, y1 + 12), steps=4)
    b.screenshot("annotate-box-dragging")
    page.mouse.up()
    _idle(page, polygons=1)
    b.screenshot("annotate-box-result")
    page.keyboard.press("Control+z")
    page.wait_for_selector("#annotate-stage[data-polygons='0']")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector("#annotate-stage[data-polygons='1']")
    _save(page)
    drawn = (x1 - x0) * (y1 - y0)
    saved = _saved_mask_pixels(b, image.pk)
    assert abs(saved - drawn) / drawn < 0.02, (saved, drawn)
    b.check_clean()


def test_superpixel_click_adds_a_region_inside_the_object(wide_page, project, alice):
    image = _upload(project, alice, seed=9)[0]
    b = wide_page()
    b.login("bob")
    page = _open_editor(b, project, image)
    page.keyboard.press("s")
    page.mouse.click(*_screen(page, 160, 90))
    _idle(page, polygons=1)
    page.mouse.click(*_screen(page, 140, 75))
    _idle(page, polygons=1)  # a neighbouring superpixel joins the same polygon
    b.screenshot("annotate-superpixel")
    area = int(_data(page, "mask-area"))
    assert 0 < area <= (RECT[2] - RECT[0] + 2) * (RECT[3] - RECT[1] + 2)
    b.check_clean()


def test_images_to_annotate_opens_the_queue_in_order_with_reasons(wide_page, project, alice, bob):
    from django.core.files.base import ContentFile

    from inspection.models import ModelVersion, Prediction

    version = ModelVersion.objects.create(
        project=project, number=1, pipeline="patchcore", threshold=10.0, region_threshold=10.0, is_active=True,
        normalization={"min": 0.0, "threshold": 10.0, "max": 20.0},
    )
    version.artifact.save("artifact.pt", ContentFile(b"x"), save=True)
    low, unsure, high = _upload(project, alice, n=3, seed=20)
    test_image = _upload(project, alice, n=1, split="test", seed=30)[0]
    for image, score in ((low, 2.0), (unsure, 10.4), (high, 18.0), (test_image, 10.0)):
        Prediction.objects.create(image=image, model_version=version, score=score, heatmap="", heatmap_min=0, heatmap_max=score)
    unscored = _upload(project, alice, n=1, seed=40)[0]

    b = wide_page()
    b.login("bob")
    b.goto(f"/projects/{project.pk}/")
    page = b.page
    page.click("#images-to-annotate")
    page.wait_for_selector("#annotate-queue tbody tr")
    order = [int(x) for x in page.eval_on_selector_all("#annotate-queue tbody tr", "rows => rows.map(r => r.dataset.imageId)")]
    assert order == [unsure.pk, high.pk, low.pk, unscored.pk]
    first_row = page.inner_text("#annotate-queue tbody tr:first-child")
    assert "model unsure" in first_row and "close to its region threshold" in first_row
    assert "High anomaly score" in page.inner_text("#annotate-queue tbody tr:nth-child(2)")
    b.screenshot("annotate-queue")
    b.check_labelled()

    page.click("#start-annotating")
    page.wait_for_selector("#annotate-stage[data-ready=true]")
    assert f"/images/{unsure.pk}/annotate/" in page.url
    page.wait_for_selector(f"#next-image[href*='/images/{high.pk}/annotate/']")
    b.check_clean()


def test_an_empty_queue_says_so_in_a_panel(wide_page, project, alice):
    from projects.models import Image

    image = _upload(project, alice, seed=60)[0]
    Image.objects.filter(pk=image.pk).update(state=Image.State.NORMAL)
    b = wide_page()
    b.login("bob")
    b.goto(f"/projects/{project.pk}/to-annotate/")
    panel = b.page.wait_for_selector("#queue-empty")
    assert "Nothing left to annotate" in panel.inner_text()
    b.screenshot("annotate-queue-empty")
    b.check_clean()


def test_model_page_shows_per_kind_metrics_and_downloads_the_model(wide_page, project, alice):
    from django.core.files.base import ContentFile

    from inspection.models import ModelVersion

    version = ModelVersion.objects.create(
        project=project, number=1, pipeline="patchcore", threshold=3.0, region_threshold=3.0, is_active=True,
        metrics={"image_auroc": 0.9, "aupro": 0.8, "per_kind": {
            "crack": {"images": 4, "image_recall": 1.0, "pixel_recall": 0.7, "aupro": 0.91, "image_auroc": 1.0},
            "stain": {"images": 3, "image_recall": 1 / 3, "pixel_recall": 0.2, "aupro": 0.45, "image_auroc": 0.6},
        }},
    )
    version.artifact.save("artifact.pt", ContentFile(b"the model file"), save=True)
    b = wide_page()
    b.login("alice")
    b.goto(f"/projects/{project.pk}/models/")
    page = b.page
    page.wait_for_selector("#per-kind tbody tr")
    assert page.inner_text("#per-kind tr[data-kind=stain]").split("\t")[:3] == ["stain", "3", "0.33"]
    assert page.inner_text("#per-kind tr[data-kind=crack]").split("\t")[2:5] == ["1.00", "0.70", "0.910"]
    href = page.get_attribute("#download-model", "href")
    response = b.api_get(href)
    assert response.ok and response.body() == b"the model file"
    assert "attachment" in response.headers["content-disposition"]
    b.screenshot("model-version-per-kind")
    b.check_clean()

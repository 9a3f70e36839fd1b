"""Annotator in the browser: draw a polygon by clicks, undo/redo, save, reload, the mask
follows the polygon; a save based on a stale version shows the conflict and overwrites nothing."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image as PILImage

from tests.e2e.conftest import record_timing
from tests.e2e.data import SIZE, synthetic_images

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SQUARE = [(16, 16), (48, 16), (48, 48), (16, 48)]  # image pixels


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on screen: the editor fits the image centred (98% of the stage)."""
    box = page.locator("#annotate-stage").bounding_box()
    scale = min(box["width"] / SIZE, box["height"] / SIZE) * 0.98
    ox = box["x"] + (box["width"] - SIZE * scale) / 2
    oy = box["y"] + (box["height"] - SIZE * scale) / 2
    return ox + x * scale, oy + y * scale


def stage(page, attr: str) -> str:
    return page.locator("#annotate-stage").get_attribute(f"data-{attr}")


def test_draw_undo_redo_save_reload_and_conflict(open_page, project, alice, bob):
    from annotations import services as annotation_services

    image, second = synthetic_images(project, alice, train_normal=0, test_normal=0, test_anomalous=2)
    b = open_page()
    b.login("bob")
    url = f"/projects/{project.pk}/images/{image.pk}/annotate/"
    b.goto(url)
    page = b.page
    page.wait_for_selector("#annotate-stage[data-ready=true]")
    assert stage(page, "polygons") == "0"

    for x, y in SQUARE:
        page.mouse.click(*screen_point(page, x, y))
    page.mouse.click(*screen_point(page, *SQUARE[0]))  # click on the first vertex closes
    page.wait_for_selector("#annotate-stage[data-polygons='1']")
    assert "Unsaved changes" in page.inner_text("#save-state")

    page.keyboard.press("Control+z")  # undo the closing: back to a 4-vertex draft
    page.wait_for_selector("#annotate-stage[data-polygons='0']")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector("#annotate-stage[data-polygons='1']")
    page.click("#undo")
    page.wait_for_selector("#annotate-stage[data-polygons='0']")
    page.click("#redo")
    page.wait_for_selector("#annotate-stage[data-polygons='1']")

    # Click an edge: a vertex is inserted (and selected); Delete removes it again.
    page.mouse.click(*screen_point(page, 32, 16))
    page.wait_for_selector("#polygon-list >> text=5 vertices")
    page.keyboard.press("Delete")
    page.wait_for_selector("#polygon-list >> text=4 vertices")
    # Drag a vertex: the corner at (48, 48) moves to (56, 56).
    page.mouse.move(*screen_point(page, 48, 48))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 52, 52), steps=3)
    page.mouse.move(*screen_point(page, 56, 56), steps=3)
    page.mouse.up()
    # Esc forgets a polygon being drawn.
    page.mouse.click(*screen_point(page, 2, 60))
    page.mouse.click(*screen_point(page, 8, 60))
    page.keyboard.press("Escape")
    assert stage(page, "polygons") == "1"
    assert page.is_disabled("#close-polygon")
    b.screenshot("annotate-drawn")
    b.check_labelled()

    started = time.perf_counter()
    page.click("#save")
    page.wait_for_selector("#annotate-stage[data-saved-version='1']")
    wall_ms = (time.perf_counter() - started) * 1000
    in_page_ms = page.evaluate("window.__annotate.lastSaveMs")
    record_timing("annotation_save_ms", {"in_page": round(in_page_ms, 1), "wall_click_to_saved": round(wall_ms, 1)})
    assert "Saved · version 1" in page.inner_text("#save-state")

    page.reload()
    page.wait_for_selector("#annotate-stage[data-ready=true]")
    assert stage(page, "polygons") == "1"
    assert stage(page, "version") == "1"
    assert "4 vertices" in page.inner_text("#polygon-list")

    mask_response = b.api_get(f"/api/images/{image.pk}/mask.png")
    assert mask_response.ok
    mask = PILImage.open(io.BytesIO(mask_response.body())).convert("L")
    assert mask.size == (SIZE, SIZE)
    assert mask.getpixel((32, 32)) > 0 and mask.getpixel((20, 44)) > 0, "inside the polygon"
    assert mask.getpixel((52, 52)) > 0, "the dragged corner took the mask with it"
    assert mask.getpixel((5, 5)) == 0 and mask.getpixel((58, 58)) == 0 and mask.getpixel((32, 5)) == 0, "outside"

    # Someone else saves version 2 meanwhile; bob's next save (based on version 1) must be refused.
    other = [{"outer": [[2, 2], [10, 2], [10, 10]], "holes": [], "label_class": None}]
    annotation_services.annotations_replace(image=image, polygons=other, expected_version=1, actor=alice)
    page.click("#polygon-list button")  # select bob's polygon
    page.click("#delete-polygon")
    page.wait_for_selector("#annotate-stage[data-polygons='0']")
    page.click("#save")
    page.wait_for_selector("#conflict [role=alert]")
    text = page.inner_text("#conflict")
    assert "Someone else changed this image" in text and "nothing was overwritten" in text
    assert stage(page, "dirty") == "true"
    b.screenshot("annotate-conflict")

    server = b.api_get(f"/api/images/{image.pk}/annotations/").json()
    assert server["version"] == 2
    assert [p["outer"] for p in server["polygons"]] == [[[2, 2], [10, 2], [10, 10]]], "the stale save overwrote nothing"

    # Leaving with unsaved work asks first; declining keeps the user (and the work) here.
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("nav a[data-nav=images]")
    assert dialogs and "unsaved changes" in dialogs[0]
    assert page.url.endswith(url) and stage(page, "dirty") == "true"

    page.click("#conflict-reload")
    page.wait_for_selector("#annotate-stage[data-version='2']")
    assert stage(page, "polygons") == "1"

    # "Mark image normal" on the next image: an empty saved set, the image becomes normal.
    b.goto(f"/projects/{project.pk}/images/{second.pk}/annotate/")
    page.wait_for_selector("#annotate-stage[data-ready=true]")
    page.click("#mark-normal")
    page.wait_for_selector("#annotate-stage[data-saved-version='1']")
    second.refresh_from_db()
    assert second.state == "normal"
    assert "· normal" in page.inner_text("#image-name")
    b.check_clean(allow=("409",))

"""The image grid with the active model's scores and flags, opening an image's review from it;
and the small things: an empty project offers upload and import, descriptions show code spans
without backticks, the training form starts on PatchCore with a rough duration, a favicon."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import WIDE
from tests.e2e.data import synthetic_images, train_and_predict

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_empty_project_description_training_form_and_favicon(open_page, project):
    project.description = "Plates from line 3; import with `manage.py import_dataset`."
    project.save()
    b = open_page(WIDE)
    b.login("alice")
    page = b.page
    b.goto(f"/projects/{project.pk}/")
    page.wait_for_selector("#empty-project")
    assert page.is_visible("#empty-upload") and page.is_visible("#empty-import")
    description = page.locator(".project-description")
    assert "`" not in description.inner_text() and description.locator("code").inner_text() == "manage.py import_dataset"
    b.screenshot("dashboard-empty-project")
    page.click("#empty-import")
    page.wait_for_selector("#import-export[open]")

    icon = page.get_attribute("link[rel=icon]", "href")
    assert b.api_get(icon).status == 200

    b.goto(f"/projects/{project.pk}/training/")
    page.wait_for_selector("#pipeline-duration")
    assert page.input_value("#pipeline") == "patchcore"
    assert "Duration:" in page.inner_text("#pipeline-duration")
    page.select_option("#pipeline", "dfr")
    assert "Duration:" in page.inner_text("#pipeline-duration")
    b.screenshot("training-form")
    b.check_clean()


def test_grid_shows_scores_and_flags_and_opens_the_review(open_page, project, alice, charlie):
    from inspection.models import Prediction
    from projects.models import Image

    synthetic_images(project, alice, train_normal=6, test_normal=2, test_anomalous=4)
    Image.objects.filter(project=project, original_name__startswith="good_0000").update(
        original_name="station_7_camera_left_surface_good_0000.png"
    )
    train_and_predict(project, alice)
    flagged = Prediction.objects.filter(flagged=True)
    assert flagged.exists()

    b = open_page(WIDE)
    b.login("charlie")
    page = b.page
    b.goto(f"/projects/{project.pk}/images/")
    page.wait_for_selector("#image-grid .thumb .badge.score-badge")
    page.wait_for_function(
        "n => document.querySelectorAll('#image-grid .thumb .badge.score-badge').length === n", arg=Image.objects.count()
    )
    assert page.locator("#image-grid .thumb .badge.flagged").count() == flagged.count()
    long_name = page.locator("#image-grid .thumb .name[title='station_7_camera_left_surface_good_0000.png']")
    assert "…" in long_name.inner_text() and long_name.inner_text().endswith("0000.png")
    b.screenshot("images-grid-inspector")

    # An inspector's click opens that image's review, even when it is far down the queue.
    target = flagged.order_by("score").first()
    page.click(f"#image-grid .thumb[data-image-id='{target.image_id}']")
    page.wait_for_selector("#review-stage[data-ready=true]")
    assert page.get_attribute("#review-stage", "data-prediction-id") == str(target.pk)
    b.check_clean()

    annotator = open_page(WIDE)
    annotator.login("bob")
    annotator.goto(f"/projects/{project.pk}/images/")
    annotator.page.wait_for_selector("#image-grid .thumb .badge.score-badge")
    href = annotator.page.get_attribute(f"#image-grid .thumb[data-image-id='{target.image_id}']", "href")
    assert href == f"/projects/{project.pk}/images/{target.image_id}/annotate/"
    annotator.check_clean()

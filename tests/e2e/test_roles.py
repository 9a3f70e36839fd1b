"""Navigation follows the role: the inspector sees no training controls, the annotator no
review controls (the server refuses them anyway; this is what people see)."""
from __future__ import annotations

import pytest

from tests.e2e.data import synthetic_images
from tests.factories import make_png

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def nav_items(page) -> list[str]:
    return page.eval_on_selector_all("nav.main-nav a[data-nav]", "links => links.map(a => a.dataset.nav)")


def test_inspector_sees_no_training_and_annotator_no_review(open_page, project, alice, bob, charlie, settings):
    synthetic_images(project, alice, train_normal=3, test_normal=0, test_anomalous=1)

    inspector = open_page()
    inspector.goto("/")
    inspector.page.wait_for_selector("#username")
    assert inspector.page.locator("form.login").count() == 1
    inspector.page.fill("#username", "charlie")
    inspector.page.fill("#password", "not-the-password")
    inspector.page.click("button[type=submit]")
    inspector.page.wait_for_selector("text=Wrong username or password.")
    inspector.screenshot("login")
    inspector.login("charlie")
    inspector.page.wait_for_selector(".project-card")
    inspector.screenshot("projects")
    inspector.goto(f"/projects/{project.pk}/")
    inspector.page.wait_for_selector("#counts")
    assert nav_items(inspector.page) == ["dashboard", "images", "review", "jobs"]
    assert inspector.page.locator("text=Train a model").count() == 0
    inspector.goto(f"/projects/{project.pk}/training/")
    inspector.page.wait_for_selector("text=cannot open this page")
    assert inspector.page.locator("#launch").count() == 0
    inspector.goto(f"/projects/{project.pk}/images/")
    inspector.page.wait_for_selector("#image-grid .thumb")
    assert inspector.page.locator("#dropzone").count() == 0, "only admins upload"
    inspector.page.click("#logout")
    inspector.page.wait_for_selector("form.login")
    inspector.goto(f"/projects/{project.pk}/review/")
    inspector.page.wait_for_selector("form.login")  # logged out: back to the login page
    assert "next=" in inspector.page.url
    inspector.check_clean(allow=("status of 403", "status of 401"))  # me while logged out, the wrong password

    annotator = open_page()
    annotator.login("bob")
    annotator.goto(f"/projects/{project.pk}/")
    annotator.page.wait_for_selector("#counts")
    assert nav_items(annotator.page) == ["dashboard", "images", "jobs"]
    assert annotator.page.locator("text=Open review queue").count() == 0
    annotator.goto(f"/projects/{project.pk}/review/")
    annotator.page.wait_for_selector("text=cannot open this page")
    assert annotator.page.locator("#verdict-anomaly").count() == 0
    annotator.goto(f"/projects/{project.pk}/images/")
    annotator.page.wait_for_selector("#image-grid .thumb")
    annotator.screenshot("images-annotator")
    href = annotator.page.get_attribute("#image-grid .thumb", "href")
    assert href.endswith("/annotate/"), href
    annotator.check_clean()

    admin = open_page()
    admin.login("alice")
    admin.goto(f"/projects/{project.pk}/images/")
    admin.page.wait_for_selector("#image-grid .thumb")
    assert admin.page.locator("#dropzone").count() == 1
    # Upload: a batch with a corrupt file saves nothing and names the bad file; then a good one.
    good = {"name": "fresh.png", "mimeType": "image/png", "buffer": make_png(64, 64, seed=99)}
    bad = {"name": "broken.png", "mimeType": "image/png", "buffer": b"not a png"}
    admin.page.set_input_files("#upload-input", [good, bad])
    admin.page.wait_for_selector("#upload-errors")
    assert "broken.png" in admin.page.inner_text("#upload-errors")
    assert project.images.count() == 4
    admin.page.select_option("#upload-split", "train")
    admin.page.select_option("#upload-state", "normal")
    admin.page.set_input_files("#upload-input", [good])
    admin.page.wait_for_selector("#upload-status .msg-success")
    admin.page.wait_for_selector("#image-grid .thumb >> nth=4")
    fresh = project.images.get(original_name="fresh.png")
    assert (fresh.split, fresh.state) == ("train", "normal")
    assert nav_items(admin.page) == ["dashboard", "images", "review", "training", "models", "jobs"]
    # Export: the job runs in-process here (eager mode, the real task code); the zip downloads.
    import annotations.tasks  # noqa: F401  registers the export task eager mode runs
    settings.CELERY_TASK_ALWAYS_EAGER = True
    admin.page.click("text=Import and export")
    admin.page.select_option("#export-format", "coco")
    admin.page.click("#export-button")
    admin.page.wait_for_selector("#export-download")
    with admin.page.expect_download() as download:
        admin.page.click("#export-download")
    assert download.value.suggested_filename.endswith(".zip")
    admin.screenshot("images-admin")
    admin.check_labelled()
    admin.check_clean(allow=("status of 400",))  # the refused upload

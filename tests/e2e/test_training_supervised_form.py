"""The training form offers supervised pipelines only when the project has annotated anomalous
train images and says why otherwise; a unet's residual input is chosen among the project's
vae model versions (thesis 4.1.1), never typed as a file path."""
from __future__ import annotations

import pytest

from tests.e2e.data import synthetic_images

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _vae_version(project, alice):
    from django.core.files.base import ContentFile

    from inspection.models import ModelVersion

    version = ModelVersion(project=project, number=1, pipeline="vae", threshold=0.1, region_threshold=0.1, created_by=alice)
    version.artifact.save("model.pt", ContentFile(b"not loaded by this page", name="model.pt"), save=False)
    version.save()
    return version


def test_supervised_pipelines_wait_for_annotations_and_unet_picks_a_vae_version(open_page, project, alice):
    from annotations.services import annotations_replace

    images = synthetic_images(project, alice, train_normal=4, test_normal=1, test_anomalous=1)
    b = open_page()
    b.login("alice")
    page = b.page
    b.goto(f"/projects/{project.pk}/training/")
    page.wait_for_selector("#supervised-note")
    assert "annotate some anomalous images" in page.inner_text("#supervised-note")
    for name in ("unet", "multilevel"):
        assert page.locator(f"#pipeline option[value={name}]").is_disabled()
    assert page.locator("#pipeline option[value=vae]").is_enabled()

    anomalous = images[-1]
    anomalous.split = "train"
    anomalous.save(update_fields=["split"])
    annotations_replace(image=anomalous, polygons=[{"outer": [[10, 10], [30, 10], [30, 30], [10, 30]]}], expected_version=0, actor=alice)
    version = _vae_version(project, alice)
    b.goto(f"/projects/{project.pk}/training/")
    page.wait_for_selector("#pipeline")
    assert page.locator("#supervised-note").count() == 0
    page.select_option("#pipeline", "unet")
    page.wait_for_selector("#cfg-input")
    assert page.locator("#cfg-vae_model").count() == 0, "no file path field in the browser"
    assert page.locator("label[for=vae-model-version]").is_visible()
    assert page.locator(f"#vae-model-version option[value='{version.pk}']").inner_text() == "version 1 (vae)"
    b.check_labelled()
    page.select_option("#pipeline", "multilevel")
    page.wait_for_selector("#cfg-alpha")
    assert not page.locator("label[for=vae-model-version]").is_visible()

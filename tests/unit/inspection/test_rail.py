"""A rail project end to end in-process: it starts with the "rail" label class, training the rail
pipeline says what is missing until rails are drawn on normal images, and its predictions keep
the rail mask and the anomalous patches as boxes for the review page."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations.models import LabelClass
from ml.data.rail_synthetic import generate_rail
from ml.formats import mask_to_polygons
from projects.models import Job, Membership

from .conftest import png_bytes

pytestmark = pytest.mark.django_db

TINY = {
    "image_size": 64, "encoder": "plain", "base_channels": 8, "max_steps": 3, "warmup_steps": 1, "ae_steps": 5,
    "hidden_units": 32, "latent_size": 16, "conv_channels": 8, "patch_max": 10, "patch_min": 6,
}


@pytest.fixture
def rail_project(alice, bob, charlie):
    from projects.services import project_create

    project = project_create(name="Harbour line", created_by=alice, kind="rail")
    Membership.objects.create(project=project, user=bob, role="annotator")
    Membership.objects.create(project=project, user=charlie, role="inspector")
    return project


@pytest.fixture
def scenes(rail_project, alice):
    """6 normal train scenes, 2 normal + 2 obstacle test scenes (obstacles annotated); no rails drawn yet."""
    from annotations.services import annotations_replace
    from projects.services import image_upload

    samples = generate_rail(8, 2, width=128, height=64, seed=4)

    def put(chunk, **kwargs):
        files = [(f"{s.name}.png", png_bytes(s.image)) for s in chunk]
        return image_upload(project=rail_project, files=files, uploaded_by=alice, **kwargs).created

    train = put(samples[:6], split="train", state="normal")
    test = put(samples[6:8], split="test", state="normal")
    obstacles = put(samples[8:], split="test", state="anomalous")
    for image, sample in zip(obstacles, samples[8:]):
        polygons = [{"outer": r.outer} for r in mask_to_polygons(sample.mask)]
        annotations_replace(image=image, polygons=polygons, expected_version=0, actor=alice)
    return {"samples": samples, "train": train, "test": test + obstacles}


def _draw_rails(images, samples, actor, project):
    from annotations.services import annotations_replace

    rail = LabelClass.objects.get(project=project, name="rail")
    for image, sample in zip(images, samples):
        polygons = [{"outer": r.outer, "label_class": rail.pk} for r in mask_to_polygons(sample.class_masks["rail"])]
        annotations_replace(image=image, polygons=polygons, expected_version=0, actor=actor)


def test_a_rail_project_starts_with_the_rail_class_and_other_kinds_do_not(alice, rail_project):
    from projects.services import project_create

    assert list(LabelClass.objects.filter(project=rail_project).values_list("name", flat=True)) == ["rail"]
    plain = project_create(name="Plates", created_by=alice)
    assert not LabelClass.objects.filter(project=plain).exists()


def test_training_without_drawn_rails_says_what_is_missing(alice_api, rail_project, scenes):
    response = alice_api.post(f"/api/projects/{rail_project.pk}/training-jobs/", {"pipeline": "rail", "config": TINY}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "'rail' polygons on some normal train images" in body["error"]
    assert body["details"]["reason"] == "no_class_masks"
    assert not Job.objects.filter(kind="training").exists()


def test_trained_rail_model_stores_rail_masks_and_boxes_for_review(alice, alice_api, rail_project, scenes, run_job_now):
    from inspection.models import ModelVersion, Prediction
    from inspection.services.model_versions import model_version_activate

    _draw_rails(scenes["train"][:4], scenes["samples"][:4], alice, rail_project)
    response = alice_api.post(f"/api/projects/{rail_project.pk}/training-jobs/", {"pipeline": "rail", "config": TINY}, format="json")
    assert response.status_code in (201, 202), response.content
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    model_version = ModelVersion.objects.get(job=job)
    # The obstacles' masks, not the rails, are the ground truth of the evaluation.
    assert model_version.metrics.get("image_auroc") is not None
    model_version_activate(model_version=model_version, user=alice)
    inference = Job.objects.filter(project=rail_project, kind="inference").latest("created_at")
    assert run_job_now(inference).status == "succeeded"
    prediction = Prediction.objects.filter(model_version=model_version, image=scenes["test"][-1]).get()
    assert prediction.class_mask
    body = alice_api.get(f"/api/predictions/{prediction.pk}/").json()
    assert isinstance(body["boxes"], list)
    assert body["class_mask_url"] == f"/api/predictions/{prediction.pk}/class_mask.png"
    png = alice_api.get(body["class_mask_url"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    with PILImage.open(io.BytesIO(png.content)) as mask:
        assert mask.size == (128, 64)
        assert set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}

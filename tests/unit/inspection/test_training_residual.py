"""A unet with the 'image+residual' input (thesis 4.1.1) reads the residual of one of the
project's vae model versions: refused plainly (and nothing created) when that version is
missing, another project's or not a vae; trained with its weights inside the unet otherwise."""
from __future__ import annotations

import pytest

from inspection.models import ModelVersion
from projects.models import Job

pytestmark = pytest.mark.django_db

URL = "/api/projects/{}/training-jobs/"
VAE = {"image_size": 32, "max_steps": 3, "warmup_steps": 1, "base_channels": 4, "latent_dim": 8, "batch_size": 4}
UNET = {"input": "image+residual", "image_size": 32, "encoder": "plain", "base_channels": 4, "max_steps": 3, "warmup_steps": 1, "batch_size": 4}


@pytest.fixture
def annotated(project, dataset, upload, alice):
    """The dataset plus one annotated anomalous train image, so supervised pipelines may train."""
    from annotations.services import annotations_replace

    (image,) = upload(project, [300], defect=True, split="train", state="anomalous")
    annotations_replace(image=image, polygons=[{"outer": [[12, 12], [26, 12], [26, 26], [12, 26]]}], expected_version=0, actor=alice)
    return image


def _trained(api, project, run_job_now, pipeline, config) -> ModelVersion:
    response = api.post(URL.format(project.pk), {"pipeline": pipeline, "config": config}, format="json")
    assert response.status_code == 201, response.json()
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    return ModelVersion.objects.get(job=job)


def _refused(api, project, body, *words):
    jobs = Job.objects.count()
    response = api.post(URL.format(project.pk), body, format="json")
    assert response.status_code == 400, response.json()
    for word in words:
        assert word in response.json()["error"]
    assert Job.objects.count() == jobs  # nothing created
    return response.json()


def test_missing_vae_version_is_refused_naming_it(alice_api, project, annotated):
    body = _refused(alice_api, project, {"pipeline": "unet", "config": UNET, "vae_model_version": 987654}, "vae_model_version", "987654")
    assert body["details"]["key"] == "vae_model_version"
    _refused(alice_api, project, {"pipeline": "unet", "config": UNET}, "vae_model_version", "train a vae first")


def test_another_projects_vae_version_is_refused_like_a_missing_one(alice_api, project, other_project, annotated, alice, run_job_now):
    from projects.models import Membership

    Membership.objects.create(project=other_project, user=alice, role="admin")
    from .conftest import png_bytes, surface
    from projects.services import image_upload

    image_upload(project=other_project, files=[(f"g{i}.png", png_bytes(surface(i, False))) for i in range(4)], uploaded_by=alice, split="train", state="normal")
    foreign = _trained(alice_api, other_project, run_job_now, "vae", VAE)
    _refused(alice_api, project, {"pipeline": "unet", "config": UNET, "vae_model_version": foreign.pk}, f"{foreign.pk} is not a model version of this project")


def test_a_version_of_another_pipeline_or_a_file_path_is_refused(alice_api, project, annotated, run_job_now):
    other = _trained(alice_api, project, run_job_now, "test-meandiff", {"image_size": 48})
    _refused(alice_api, project, {"pipeline": "unet", "config": UNET, "vae_model_version": other.pk}, "'test-meandiff' model, not a 'vae'")
    _refused(alice_api, project, {"pipeline": "unet", "config": {**UNET, "vae_model": "/etc/passwd"}}, "config.vae_model", "file paths are not accepted")
    _refused(alice_api, project, {"pipeline": "unet", "config": {"image_size": 32}, "vae_model_version": other.pk}, "only used by a unet with input 'image+residual'")


def test_residual_unet_trains_from_a_vae_version_and_records_it(alice_api, project, annotated, run_job_now):
    from ml import registry

    vae = _trained(alice_api, project, run_job_now, "vae", VAE)
    assert set(vae.training["reconstruction"]) == {"l1", "mse", "ssim"}  # Table 5.1 on the model version
    response = alice_api.post(URL.format(project.pk), {"pipeline": "unet", "config": UNET, "vae_model_version": vae.pk}, format="json")
    assert response.status_code == 201, response.json()
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    assert job.params["vae_model_version"] == vae.pk
    unet = ModelVersion.objects.get(job=job)
    assert unet.training["residual_model"]["source"] == f"model version {vae.number}"
    vae.delete()  # the unet's artifact carries the vae: it still predicts
    with unet.artifact.open("rb") as handle:
        loaded = registry.load_bytes(handle.read())
    assert loaded.residual_model is not None
    from .conftest import surface

    assert loaded.predict([surface(900, True)]).maps.shape == (1, *surface(900, True).shape[:2])

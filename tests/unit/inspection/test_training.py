"""Training through the API and the job body: validation, snapshot, model version, faults."""
from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from inspection.models import DatasetSnapshot, ModelVersion
from projects.models import Job

from .conftest import MeanDiffPipeline

pytestmark = pytest.mark.django_db

URL = "/api/projects/{}/training-jobs/"


def test_pipelines_are_listed_with_their_config_schemas(alice_api):
    response = alice_api.get("/api/pipelines/")
    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()}
    assert {"dfr", "patchcore", "unet"} <= set(by_name)
    assert by_name["unet"]["supervision"] == "supervised"
    assert "image_size" in by_name["patchcore"]["config_schema"]["properties"]


def test_unknown_pipeline_is_refused_with_the_known_ones_and_no_job(alice_api, project, dataset):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "magic"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "magic" in body["error"] and "patchcore" in body["error"]
    assert "dfr" in body["details"]["known"]
    assert not Job.objects.filter(kind="training").exists()


def test_bad_config_key_is_named_and_no_job(alice_api, project, dataset):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "patchcore", "config": {"imagesize": 64}}, format="json")
    assert response.status_code == 400
    assert "imagesize" in response.json()["error"]
    response = alice_api.post(URL.format(project.pk), {"pipeline": "patchcore", "config": {"image_size": "big"}}, format="json")
    assert response.status_code == 400
    assert response.json()["details"]["key"] == "config.image_size"
    response = alice_api.post(URL.format(project.pk), {"pipeline": "patchcore", "config": [1, 2]}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("config: expected an object")
    assert not Job.objects.filter(kind="training").exists()


def test_weights_path_must_name_a_file_in_the_weights_folder_and_leaks_nothing(settings, tmp_path, alice_api, project, dataset):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "resnet18.pth").write_bytes(b"x")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    settings.INSPECTION_WEIGHTS_DIR = folder
    errors = []
    for path in (str(secret), "../secret.txt", "../missing.txt", "missing.pth", str(tmp_path), "/etc/passwd"):
        config = {"backbone": "resnet18", "layers": ["layer2", "layer3"], "weights_path": path}
        response = alice_api.post(URL.format(project.pk), {"pipeline": "patchcore", "config": config}, format="json")
        assert response.status_code == 400, response.json()
        errors.append(response.json()["error"].replace(repr(path), "<path>"))
    # An existing file outside the folder and a missing one get the same answer (no file-system oracle).
    assert len(set(errors)) == 1 and str(tmp_path) not in errors[0]
    assert not Job.objects.filter(kind="training").exists()
    from inspection.services.training import pipeline_config_validate

    validated = pipeline_config_validate("patchcore", {"backbone": "resnet18", "layers": ["layer2", "layer3"],
                                                       "weights_path": "resnet18.pth"})
    assert validated["weights_path"] == str((folder / "resnet18.pth").resolve())


def test_no_normal_train_images_is_refused_with_a_reason(alice_api, project, upload):
    upload(project, range(3), split="test")
    response = alice_api.post(URL.format(project.pk), {"pipeline": "patchcore"}, format="json")
    assert response.status_code == 400
    assert "no normal images in the train split" in response.json()["error"]
    assert not Job.objects.exists()


def test_supervised_pipeline_without_masks_is_refused(alice_api, project, dataset):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "unet"}, format="json")
    assert response.status_code == 400
    assert response.json()["details"]["reason"] == "no_masks"
    assert not Job.objects.filter(kind="training").exists()


@pytest.mark.parametrize("persona, status", [("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_train(personas_api, persona, status, project, dataset):
    response = personas_api[persona].post(URL.format(project.pk), {"pipeline": "patchcore"}, format="json")
    assert response.status_code == status
    assert not Job.objects.filter(kind="training").exists()


def test_training_makes_a_model_version_with_metrics_threshold_curves_and_snapshot(alice_api, project, dataset, run_job_now):
    response = alice_api.post(URL.format(project.pk), {"pipeline": "test-meandiff", "config": {"image_size": 48}}, format="json")
    assert response.status_code == 201, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "queued" and job.params["config"]["batch_size"] == 8  # defaults filled in

    job = run_job_now(job)
    assert job.status == "succeeded", job.error
    model_version = ModelVersion.objects.get(job=job)
    assert model_version.number == 1 and not model_version.is_active
    assert model_version.threshold > 0
    metrics = model_version.metrics
    assert metrics["image_auroc"] == pytest.approx(1.0)
    assert metrics["normal_images"] == 2 and metrics["anomalous_images"] == 3
    curves = model_version.curves
    assert len(curves["image_roc"]["fpr"]) == len(curves["image_roc"]["tpr"]) >= 2
    assert len(curves["image_pr"]["precision"]) >= 2 and len(curves["pixel_roc"]["fpr"]) >= 2
    assert sum(curves["image_histogram"]["anomalous"]) == 3 and sum(curves["image_histogram"]["normal"]) == 2
    assert metrics["pixel_auroc"] > 0.9 and "aupro" in metrics
    snapshot = model_version.snapshot
    roles = sorted((e["role"], e["state"]) for e in snapshot.images)
    assert roles.count(("train", "normal")) == 6 and roles.count(("evaluation", "anomalous")) == 3 and not any(r == "calibration" for r, _ in roles)
    assert all(e["annotation_version"] == 1 for e in snapshot.images if e["state"] == "anomalous")
    assert job.result["model_version"] == model_version.pk

    detail = alice_api.get(f"/api/model-versions/{model_version.pk}/").json()
    assert detail["metrics"]["image_auroc"] == pytest.approx(1.0) and "image_roc" in detail["curves"]
    listing = alice_api.get(f"/api/projects/{project.pk}/model-versions/").json()
    assert listing["results"][0]["metrics"]["image_auroc"] == pytest.approx(1.0)


def test_artifact_is_content_addressed_and_loads_back(project, dataset, alice, run_job_now):
    from inspection.services.inference import load_pipeline
    from inspection.services.training import training_job_start

    first = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff"))
    second = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff"))
    a, b = ModelVersion.objects.get(job=first), ModelVersion.objects.get(job=second)
    assert (a.number, b.number) == (1, 2)
    assert a.artifact.name == b.artifact.name  # same data, same seed: same bytes, one blob
    pipeline = load_pipeline(a)
    assert pipeline.threshold == pytest.approx(a.threshold)


def test_a_pipeline_that_raises_fails_the_job_and_leaves_no_model_version(project, dataset, alice, run_job_now):
    from inspection.services.training import training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"fail_at_step": 1}))
    assert job.status == "failed"
    assert "simulated failure at step 1" in job.error
    assert "RuntimeError" in job.traceback
    assert not ModelVersion.objects.exists()


def test_running_a_job_twice_does_nothing_the_second_time(project, dataset, alice, run_job_now):
    from inspection.services.training import training_job_run, training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff"))
    assert training_job_run(job_id=job.pk) is None  # a redelivered task finds nothing to claim
    assert ModelVersion.objects.filter(job=job).count() == 1
    assert DatasetSnapshot.objects.filter(job=job).count() == 1


def test_cancel_while_running_stops_at_the_next_progress_report(project, dataset, alice, alice_api, run_job_now):
    import time

    from inspection.services.training import training_job_start

    job = training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"fit_steps": 40, "step_seconds": 0.1})
    cancelled_at = {}

    def cancel_once(step):
        if step == 3:
            response = alice_api.post(f"/api/jobs/{job.pk}/cancel")
            assert response.status_code == 202 and response.json()["cancel_requested"]
            cancelled_at["t"] = time.monotonic()

    MeanDiffPipeline.on_step = cancel_once
    job = run_job_now(job)
    assert job.status == "cancelled"
    assert time.monotonic() - cancelled_at["t"] < 3  # next progress write (at most ~1 s) saw the flag
    assert not ModelVersion.objects.exists()


def test_soft_time_limit_fails_the_job_with_a_plain_reason(project, dataset, alice, run_job_now):
    from inspection.services.training import training_job_start

    def too_long(step):
        raise SoftTimeLimitExceeded()

    MeanDiffPipeline.on_step = too_long
    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff"))
    assert job.status == "failed"
    assert job.error.startswith("time limit exceeded")
    assert not ModelVersion.objects.exists()


def test_data_removed_before_the_job_starts_fails_it_with_the_reason(project, dataset, alice, run_job_now):
    from inspection.services.training import training_job_start
    from projects.models import Image

    job = training_job_start(project=project, user=alice, pipeline="test-meandiff")
    Image.objects.filter(project=project, split="train").update(split="val")
    job = run_job_now(job)
    assert job.status == "failed" and "no normal images in the train split" in job.error


def test_supervised_training_gets_the_annotated_train_images_with_their_masks(alice_api, project, dataset, upload, alice, run_job_now):
    from annotations.services import annotations_replace

    from .conftest import MaskedMeanDiffPipeline

    (image,) = upload(project, [300], defect=True, split="train", state="anomalous")
    annotations_replace(image=image, polygons=[{"outer": [[12, 12], [26, 12], [26, 26], [12, 26]]}], expected_version=0, actor=alice)
    response = alice_api.post(URL.format(project.pk), {"pipeline": "test-masked-meandiff"}, format="json")
    assert response.status_code == 201, response.json()
    job = run_job_now(Job.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    seen = MaskedMeanDiffPipeline.seen_masks
    assert seen.count((0, 0)) == 6  # normal train images come with empty masks
    ((label, pixels),) = [item for item in seen if item[0] == 1]
    assert pixels >= 14 * 14  # the annotated square, rasterised
    assert ModelVersion.objects.get(job=job).snapshot.summary["train_anomalous"] == 1


def test_val_images_calibrate_and_test_images_measure(project, dataset, upload, alice, run_job_now):
    from inspection.services.training import training_job_start

    val = upload(project, range(400, 403), split="val")
    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff"))
    snapshot = ModelVersion.objects.get(job=job).snapshot
    calibration = {e["id"] for e in snapshot.images if e["role"] == "calibration"}
    evaluation = {e["id"] for e in snapshot.images if e["role"] == "evaluation"}
    assert calibration == {i.pk for i in val}
    assert evaluation == {i.pk for i in dataset["test_normal"] + dataset["test_defect"]}
    assert any("threshold calibrated on 3 validation image(s)" in line for line in job.log)

"""Fixtures of the inspection tests: a tiny test-only pipeline and a tiny labelled dataset.

``test-meandiff`` is a real pipeline of the ``ml`` interface (fit, predict,
artifact round trip) that learns the mean normal image and scores pixels by
their distance to it. It trains in milliseconds, so service and API tests run
the whole training -> model version -> inference -> review path in-process;
the real ``patchcore`` and ``dfr`` run in tests/integration through a worker.
Its config can make it fail, or call a hook, at a chosen fit step.
"""
from __future__ import annotations

import dataclasses
import io
import time
from typing import Callable, ClassVar

import numpy as np
import pytest
from PIL import Image as PILImage

from ml import registry
from ml.base import Pipeline, Predictions, no_progress
from ml.config import PipelineConfig

SIZE = 48
SQUARE = (12, 12, 26, 26)  # x0, y0, x1, y1 of the defect on anomalous images


@dataclasses.dataclass
class MeanDiffConfig(PipelineConfig):
    fit_steps: int = dataclasses.field(default=3, metadata={"minimum": 1})
    step_seconds: float = dataclasses.field(default=0.0, metadata={"minimum": 0.0})
    fail_at_step: int = -1


class MeanDiffPipeline(Pipeline):
    name = "test-meandiff"
    supervision = "unsupervised"
    config_class = MeanDiffConfig
    description = "test only: distance to the mean normal image"
    # Called with the step number at every fit step (tests use it to cancel mid-fit).
    on_step: ClassVar[Callable[[int], None] | None] = None

    def fit(self, train, val=None, progress=no_progress):
        cfg = self.config
        for step in range(cfg.fit_steps):
            progress("fitting", step / cfg.fit_steps, {"loss": 1.0 / (step + 1)})
            if MeanDiffPipeline.on_step is not None:
                MeanDiffPipeline.on_step(step)
            if step == cfg.fail_at_step:
                raise RuntimeError(f"simulated failure at step {step}")
            time.sleep(cfg.step_seconds)
        progress("fitting", 1.0)
        self.mean = np.mean([s.image.astype(np.float32) for s in train], axis=0)
        train_scores = self.predict([s.image for s in train]).scores
        self.threshold = float(train_scores.max()) * 1.5
        self.normalization = {"min": 0.0, "max": float(self.threshold) * 2}
        self.meta["threshold_source"] = "1.5 x max of train scores"

    def predict(self, images):
        maps = []
        for image in images:
            diff = np.abs(image.astype(np.float32) - self.mean).mean(axis=2) / 255.0
            # 3x3 box blur: noise averages out, a defect does not.
            padded = np.pad(diff, 1, mode="edge")
            blurred = sum(padded[dy : dy + diff.shape[0], dx : dx + diff.shape[1]] for dy in range(3) for dx in range(3)) / 9
            maps.append(blurred.astype(np.float32))
        maps = np.stack(maps)
        return Predictions(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)

    def state_tensors(self):
        import torch

        return {"mean": torch.from_numpy(self.mean)}

    def load_state_tensors(self, state):
        self.mean = state["mean"].numpy()


class MaskedMeanDiffPipeline(MeanDiffPipeline):
    """The same, declared supervised: it records the masks it was given."""

    name = "test-masked-meandiff"
    supervision = "supervised"
    seen_masks: ClassVar[list] = []

    def fit(self, train, val=None, progress=no_progress):
        MaskedMeanDiffPipeline.seen_masks = [(s.label, None if s.mask is None else int(s.mask.sum())) for s in train]
        super().fit([s for s in train if s.label == 0], val, progress)


registry.register(MeanDiffPipeline)
registry.register(MaskedMeanDiffPipeline)


def surface(seed: int, defect: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.clip(128 + rng.normal(0, 4, size=(SIZE, SIZE, 3)), 0, 255)
    if defect:
        x0, y0, x1, y1 = SQUARE
        image[y0:y1, x0:x1] = 250
    return image.astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _quiet_jobs(settings):
    # In-process job runs: no heartbeat thread (it would open its own DB connection).
    settings.JOB_HEARTBEAT_SECONDS = 0
    # Persona passwords need no real key stretching in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    MeanDiffPipeline.on_step = None
    yield
    MeanDiffPipeline.on_step = None


@pytest.fixture
def upload(alice):
    from projects.services import image_upload

    def make(project, seeds, *, defect=False, split="train", state="normal"):
        files = [(f"{'defect' if defect else 'good'}_{s}.png", png_bytes(surface(s, defect))) for s in seeds]
        return image_upload(project=project, files=files, uploaded_by=alice, split=split, state=state).created

    return make


@pytest.fixture
def dataset(project, upload, alice):
    """6 normal train images, 2 normal test images, 3 anomalous test images with their square annotated."""
    from annotations.services import annotations_replace

    train = upload(project, range(6))
    test_normal = upload(project, range(100, 102), split="test")
    test_defect = upload(project, range(200, 203), defect=True, split="test", state="anomalous")
    x0, y0, x1, y1 = SQUARE
    for image in test_defect:
        annotations_replace(
            image=image, polygons=[{"outer": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}], expected_version=0, actor=alice
        )
    return {"train": train, "test_normal": test_normal, "test_defect": test_defect}


@pytest.fixture
def run_job_now():
    """Run a queued job's task body in this process (what the worker would do)."""
    from inspection.services.inference import inference_job_run
    from inspection.services.model_versions import predictions_redraw_run
    from inspection.services.training import training_job_run
    from projects.models import Job

    bodies = {Job.Kind.TRAINING: training_job_run, Job.Kind.INFERENCE: inference_job_run, Job.Kind.REDRAW: predictions_redraw_run}

    def run(job):
        bodies[job.kind](job_id=job.pk)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def trained(project, dataset, alice, run_job_now):
    """A succeeded training of ``test-meandiff`` whose model version is active and has
    predicted every image. Returns (model_version, dataset)."""
    from inspection.models import ModelVersion
    from inspection.services.model_versions import model_version_activate
    from inspection.services.training import training_job_start
    from projects.models import Job

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"image_size": 48}))
    assert job.status == "succeeded", job.error
    model_version = ModelVersion.objects.get(job=job)
    model_version_activate(model_version=model_version, user=alice)
    inference = Job.objects.filter(project=project, kind="inference").latest("created_at")
    assert run_job_now(inference).status == "succeeded"
    return model_version, dataset


API_PERSONAS = ("staff", "admin", "annotator", "inspector", "outsider", "anonymous")


@pytest.fixture
def clients(alice, bob, charlie, dave, staff_user):
    """API clients by persona: staff erin, admin alice, annotator bob, inspector charlie, outsider dave, anonymous."""
    from rest_framework.test import APIClient

    made = {}
    for persona, user in zip(API_PERSONAS, (staff_user, alice, bob, charlie, dave, None)):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        made[persona] = client
    return made


@pytest.fixture
def targets(trained, project, bob, alice, charlie):
    """An object of every kind the API's URLs name (role matrix, schema-driven tests)."""
    from annotations.models import LabelClass
    from inspection.models import Prediction, Review
    from projects.models import Job
    from projects.storage import save_bytes

    model_version, data = trained
    image = data["test_defect"][0]
    export = Job.objects.create(project=project, kind="export", status="succeeded", params={"format": "coco"},
                                requested_by=alice)
    export.output_file.name = save_bytes(b"PK\x05\x06" + b"\x00" * 18)
    export.save()
    return {
        "project_id": project.pk,
        "user_id": bob.pk,
        "image_id": image.pk,
        "label_class_id": LabelClass.objects.get(project=project).pk,
        "job_id": export.pk,
        "model_version": model_version.pk,
        "prediction": Prediction.objects.get(image=image, model_version=model_version).pk,
        "training_job": model_version.job_id,
        # An inspector's verdict that changed nothing (undo: only charlie may take it back).
        "review": Review.objects.create(
            prediction_id=Prediction.objects.get(image=image, model_version=model_version).pk, reviewer=charlie,
            verdict="unsure", effect={"before": {"state": image.state, "split": image.split}},
        ).pk,
    }

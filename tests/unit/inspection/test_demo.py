"""The demo step: a default model trained, activated and run on every demo image, once."""
from __future__ import annotations

import pytest

from inspection.models import ModelVersion, Prediction
from projects.models import Image, Job

pytestmark = pytest.mark.django_db


def test_demo_step_trains_activates_and_predicts_every_image_once(settings):
    from projects.demo import demo_build

    lines: list[str] = []
    project, users = demo_build(log=lines.append, n_train=8, n_test_normal=2, n_test_anomalous=3, size=64)
    active = ModelVersion.objects.get(project=project, is_active=True)
    assert active.pipeline == "patchcore" and active.config["image_size"] == 64
    assert Prediction.objects.filter(model_version=active).count() == Image.objects.filter(project=project).count() == 13 + 11
    # Calibrated on the val split's annotated defects: the region threshold is F1-optimal there.
    assert "F1-optimal" in active.region_threshold_policy
    assert Prediction.objects.filter(model_version=active, flagged=True).exists()
    assert any("flagged for review" in line for line in lines)

    demo_build(log=lines.append)  # running the demo again trains nothing new
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert Job.objects.filter(project=project, kind="training").count() == 1

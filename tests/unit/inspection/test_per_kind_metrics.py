"""A model version's metrics carry recall and AU-PRO per defect kind when the test images have kinds."""
from __future__ import annotations

import pytest

from annotations.services import annotations_replace, label_class_create
from inspection.models import ModelVersion
from inspection.services.training import training_job_start
from tests.unit.inspection.conftest import SQUARE

pytestmark = pytest.mark.django_db


def test_label_classes_give_per_kind_recall_and_aupro(project, upload, alice, alice_api, run_job_now):
    upload(project, range(6))
    upload(project, range(100, 103), split="test")
    defects = upload(project, range(200, 205), defect=True, split="test", state="anomalous")
    scratch = label_class_create(project=project, name="scratch", actor=alice)
    stain = label_class_create(project=project, name="stain", actor=alice)
    x0, y0, x1, y1 = SQUARE
    square = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    for image, cls in zip(defects, [scratch, scratch, scratch, stain, stain]):
        annotations_replace(image=image, polygons=[{"outer": square, "label_class": cls.pk}], expected_version=0, actor=alice)

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"image_size": 48}))
    assert job.status == "succeeded", job.error
    per_kind = ModelVersion.objects.get(job=job).metrics["per_kind"]
    assert sorted(per_kind) == ["scratch", "stain"]
    assert per_kind["scratch"]["images"] == 3 and per_kind["stain"]["images"] == 2
    assert per_kind["scratch"]["image_recall"] == 1.0  # the bright squares stand out
    assert 0.0 <= per_kind["stain"]["aupro"] <= 1.0
    detail = alice_api.get(f"/api/model-versions/{ModelVersion.objects.get(job=job).pk}/").json()
    assert detail["metrics"]["per_kind"]["stain"]["images"] == 2


def test_one_kind_adds_no_per_kind_table(project, dataset, alice, run_job_now):
    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"image_size": 48}))
    assert "per_kind" not in ModelVersion.objects.get(job=job).metrics

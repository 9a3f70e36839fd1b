"""PatchCore on real metal plates (MPDD metal_plate, unsupervised protocol); skipped without the shared datasets."""
from __future__ import annotations

import pytest

from ml.data.datasets import MVTecDataset
from ml.metrics.evaluate import evaluate
from ml.pipelines.patchcore import PatchCorePipeline
from tests.unit.ml._datasets import dataset

pytestmark = pytest.mark.slow


def test_patchcore_finds_real_defects_on_metal_plates():
    root = dataset("mpdd_metal_plate")
    train, test = MVTecDataset(root, "train"), MVTecDataset(root, "test")
    # The default configuration at the default 256x256 working size: what a user gets.
    pipeline = PatchCorePipeline({"batch_size": 16, "calibration_images": 16})
    pipeline.fit(list(train))
    samples = list(test)
    out = pipeline.predict([s.image for s in samples])
    metrics = evaluate(out.scores, out.maps, [s.mask for s in samples], [s.label for s in samples])
    assert metrics["image_auroc"] >= 0.98, metrics
    assert metrics["pixel_auroc"] >= 0.98, metrics

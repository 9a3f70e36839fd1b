"""PatchCore on tiny synthetic surfaces: it finds the defects, saves and loads, stops when cancelled."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import registry
from ml.base import Cancelled
from ml.components.coreset import greedy_coreset, nearest_neighbors
from ml.config import ConfigError
from ml.data.synthetic import generate
from ml.pipelines.patchcore import PatchCorePipeline

SIZE = 128


@pytest.fixture(scope="module")
def data():
    return generate(6, 0, size=SIZE, seed=1), generate(3, 3, size=SIZE, seed=2)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    pipeline = PatchCorePipeline({"image_size": SIZE, "coreset_ratio": 0.25})
    stages = []
    pipeline.fit(train, progress=lambda stage, fraction, metrics=None: stages.append((stage, fraction)))
    return pipeline, stages


def test_finds_defective_images_and_pixels(fitted, data):
    pipeline, _ = fitted
    _, test = data
    out = pipeline.predict([s.image for s in test])
    assert out.scores.shape == (6,) and out.scores.dtype == np.float32
    assert out.maps.shape == (6, SIZE, SIZE) and out.maps.dtype == np.float32
    assert np.isfinite(out.maps).all() and (out.maps >= 0).all()
    labels = np.array([s.label for s in test])
    assert out.scores[labels == 1].min() > out.scores[labels == 0].max()
    for sample, heatmap in zip(test, out.maps):
        if sample.label == 1:
            assert heatmap[sample.mask > 0].mean() > heatmap[sample.mask == 0].mean()


def test_threshold_comes_from_normal_images(fitted, data):
    pipeline, stages = fitted
    assert pipeline.threshold is not None and pipeline.threshold > 0
    assert "FPR" in pipeline.meta["threshold_source"]
    assert pipeline.normalization["threshold"] == pipeline.threshold
    assert [s for s, _ in stages][-1] == "calibrate" and {"features", "coreset"} <= {s for s, _ in stages}
    out = pipeline.predict([s.image for s in data[1]])
    assert out.masks is not None and out.masks.dtype == bool
    # Masks outline at the region threshold (ml.components.calibration), flags use the image one.
    assert pipeline.region_threshold is not None
    assert np.array_equal(out.masks, out.maps > pipeline.region_threshold)


def test_save_load_gives_the_same_maps(fitted, data, tmp_path):
    pipeline, _ = fitted
    path = tmp_path / "patchcore.pt"
    pipeline.save(path)
    artifact = torch.load(path, weights_only=True)
    assert artifact["pipeline"] == "patchcore"
    loaded = registry.load(path)
    images = [s.image for s in data[1]]
    a, b = pipeline.predict(images), loaded.predict(images)
    assert np.array_equal(a.maps, b.maps) and np.array_equal(a.scores, b.scores)
    assert loaded.threshold == pipeline.threshold


def test_maps_come_back_at_each_input_size(fitted, data):
    pipeline, _ = fitted
    image = data[1][0].image
    odd = np.ascontiguousarray(image[:100, :90])
    out = pipeline.predict([image, odd])
    assert isinstance(out.maps, list)
    assert out.maps[0].shape == (SIZE, SIZE) and out.maps[1].shape == (100, 90)


def test_bad_images_and_unfitted_use_are_refused(fitted):
    pipeline, _ = fitted
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        pipeline.predict([np.zeros((32, 32), np.uint8)])
    with pytest.raises(RuntimeError, match="not fitted"):
        PatchCorePipeline({"image_size": 64}).predict([np.zeros((64, 64, 3), np.uint8)])


def test_cancel_through_progress_stops_fit(data):
    pipeline = PatchCorePipeline({"image_size": 64})

    def progress(stage, fraction, metrics=None):
        if stage == "coreset":
            raise Cancelled("job cancelled")

    with pytest.raises(Cancelled):
        pipeline.fit(data[0], progress=progress)
    assert pipeline.model.memory_bank.numel() == 0


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError) as error:
        PatchCorePipeline({"coreset_ratio": 0})
    assert error.value.key == "coreset_ratio"
    with pytest.raises(ConfigError) as error:
        PatchCorePipeline({"neighbours": 3})
    assert error.value.key == "neighbours"


def test_greedy_coreset_covers_every_cluster():
    generator = torch.Generator().manual_seed(0)
    centers = torch.randn(20, 64, generator=generator) * 10
    points = (centers.repeat_interleave(500, 0) + torch.randn(10000, 64, generator=generator) * 0.1)
    chosen = greedy_coreset(points, 0.002, projection_dim=16)
    assert len(chosen) == 20 and set((chosen // 500).tolist()) == set(range(20))
    # Ten shards of 1,000 points, each with a budget of 20 picks, still cover every cluster.
    chosen = greedy_coreset(points, 0.02, projection_dim=16, shard_size=1024)
    assert len(chosen) == 200 and set((chosen // 500).tolist()) == set(range(20))


def test_nearest_neighbors_match_brute_force():
    generator = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(300, 16, generator=generator), torch.randn(50, 16, generator=generator)
    distances, indices = nearest_neighbors(queries, bank, k=3, max_elements=1000)
    brute = torch.cdist(queries, bank)
    expected, expected_idx = brute.topk(3, dim=1, largest=False)
    assert torch.allclose(distances, expected, atol=1e-4)
    assert torch.equal(indices, expected_idx)

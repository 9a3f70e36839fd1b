"""DFR on tiny synthetic surfaces: regional features as in the paper, defects found, save/load, cancel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import registry
from ml.base import Cancelled
from ml.components.features import align_to_grid
from ml.config import ConfigError
from ml.data.synthetic import generate
from ml.pipelines.dfr import DFRPipeline
from ml.pipelines.dfr.pipeline import pca_latent_dim
from ml.pipelines.dfr.torch_model import FeatureAutoencoder

SIZE = 128
CONFIG = {"image_size": SIZE, "max_steps": 30, "val_every": 5, "learning_rate": 1e-3, "region_size": 8}


@pytest.fixture(scope="module")
def data():
    return generate(6, 0, size=SIZE, seed=3), generate(3, 3, size=SIZE, seed=4)


@pytest.fixture(scope="module")
def fitted(data):
    pipeline = DFRPipeline(CONFIG)
    log = []
    pipeline.fit(data[0], progress=lambda stage, fraction, metrics=None: log.append((stage, fraction, metrics)))
    return pipeline, log


def test_alignment_equals_nearest_resize_then_mean_filter():
    # Section IV-A 3: resize to the input size by nearest neighbour, then a k x k mean filter with stride k.
    generator = torch.Generator().manual_seed(0)
    for size in (64, 32, 8):
        feature = torch.randn(2, 5, size, size, generator=generator)
        paper = torch.nn.functional.avg_pool2d(torch.nn.functional.interpolate(feature, size=(128, 128), mode="nearest"), 4, 4)
        assert torch.allclose(align_to_grid(feature, 32), paper, atol=1e-6)


def test_autoencoder_follows_table_viii():
    autoencoder = FeatureAutoencoder(100, 20)
    convs = [m for m in autoencoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (100, 60, (1, 1)), (60, 40, (1, 1)), (40, 20, (1, 1)), (20, 40, (1, 1)), (40, 60, (1, 1)), (60, 100, (1, 1))
    ]


def test_pca_picks_the_latent_size_explaining_90_percent():
    generator = torch.Generator().manual_seed(0)
    # Three strong directions carry almost all the variance of 10-dimensional samples.
    basis = torch.linalg.qr(torch.randn(10, 10, generator=generator))[0][:, :3]
    samples = torch.randn(2000, 3, generator=generator) * torch.tensor([5.0, 4.0, 3.0]) @ basis.T
    samples += 0.01 * torch.randn(2000, 10, generator=generator)
    assert pca_latent_dim(samples, 0.9) == 3
    assert pca_latent_dim(samples, 0.6) == 2  # variances 25, 16, 9: the first explains 50%, two 82%


def test_training_reports_progress_and_lowers_the_loss(fitted):
    pipeline, log = fitted
    losses = [m["loss"] for stage, _, m in log if stage == "train"]
    assert len(losses) == CONFIG["max_steps"]  # one report per step of the budget
    curve = [loss for _, loss in pipeline.meta["training"]["curves"]["train_loss"]]
    assert len(curve) == CONFIG["max_steps"] // CONFIG["val_every"]
    assert curve[-1] < 0.8 * curve[0]
    assert pipeline.meta["training"]["steps"] == CONFIG["max_steps"]
    assert log[-1][0] == "calibrate" and pipeline.threshold is not None
    assert 1 <= pipeline.meta["latent_dim"] < pipeline.meta["feature_channels"]


def test_finds_defective_images_and_pixels(fitted, data):
    pipeline, _ = fitted
    _, test = data
    out = pipeline.predict([s.image for s in test])
    assert out.maps.shape == (6, SIZE, SIZE) and out.maps.dtype == np.float32
    assert out.scores.shape == (6,) and np.allclose(out.scores, out.maps.reshape(6, -1).max(1))
    labels = np.array([s.label for s in test])
    assert out.scores[labels == 1].mean() > out.scores[labels == 0].mean()
    inside = np.mean([m[s.mask > 0].mean() for s, m in zip(test, out.maps) if s.label == 1])
    outside = np.mean([m[s.mask == 0].mean() for s, m in zip(test, out.maps) if s.label == 1])
    assert inside > outside
    # Masks outline at the region threshold (ml.components.calibration), flags use the image one.
    assert pipeline.region_threshold is not None
    assert np.array_equal(out.masks, out.maps > pipeline.region_threshold)


def test_save_load_gives_the_same_maps(fitted, data, tmp_path):
    pipeline, _ = fitted
    path = tmp_path / "dfr.pt"
    pipeline.save(path)
    assert torch.load(path, weights_only=True)["state"]["latent_dim"] == pipeline.meta["latent_dim"]
    loaded = registry.load(path)
    images = [s.image for s in data[1]]
    assert np.array_equal(pipeline.predict(images).maps, loaded.predict(images).maps)


def test_cancel_through_progress_stops_fit(data):
    pipeline = DFRPipeline({**CONFIG, "max_steps": 500})
    steps = []

    def progress(stage, fraction, metrics=None):
        if stage == "train":
            steps.append(metrics["step"])
            if metrics["step"] == 2:
                raise Cancelled("job cancelled")

    with pytest.raises(Cancelled):
        pipeline.fit(data[0][:2], progress=progress)
    assert steps == [1, 2]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError) as error:
        DFRPipeline({"region_size": 3})
    assert error.value.key == "region_size"
    with pytest.raises(ConfigError) as error:
        DFRPipeline({"max_steps": "many"})
    assert error.value.key == "max_steps"


def test_unfitted_and_bad_input_are_refused(fitted):
    with pytest.raises(RuntimeError, match="not fitted"):
        DFRPipeline({"image_size": 64}).predict([np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        fitted[0].predict([np.zeros((64, 64, 3), np.float32)])

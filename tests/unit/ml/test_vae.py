"""The thesis' VAE (sections 4.2.1, 5.1): KL term, SSIM, decoder sizes, the plain
``reconstruct`` API other pipelines use, and the Table 5.1 measures."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml import registry
from ml.components.ssim_map import ssim, ssim_map
from ml.components.variational import ConvDecoder, halving_sizes, kl_sum
from ml.data.synthetic import generate
from ml.pipelines.vae.loss import reconstruction_sum, vae_loss


def test_kl_sum_matches_a_hand_computed_case():
    # Eq. 4.3 for mu = (1, 0), sigma^2 = (1, 2): 0.5 * [(1 + 1 - 0 - 1) + (0 + 2 - ln 2 - 1)] = 1 - ln(2) / 2
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    assert kl_sum(mu, logvar).item() == pytest.approx(1.0 - math.log(2.0) / 2, abs=1e-6)
    assert kl_sum(torch.zeros(3, 8), torch.zeros(3, 8)).tolist() == [0.0, 0.0, 0.0]


def test_loss_is_mse_sum_plus_alpha_kl_sum_averaged_over_images():
    target = torch.zeros(2, 3, 4, 4)
    recon = torch.full((2, 3, 4, 4), 0.5)
    mu, logvar = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.zeros(2, 2)
    total, terms = vae_loss("mse", 0.1, recon, target, mu, logvar)
    # MSE_sum per image = 48 * 0.25 = 12; KL_sum = (0.5, 0) -> mean 12 + 0.1 * 0.25
    assert total.item() == pytest.approx(12.0 + 0.1 * 0.25)
    assert terms["reconstruction"] == pytest.approx(12.0)
    assert reconstruction_sum("l1", recon, target).tolist() == [24.0, 24.0]


def test_ssim_is_one_for_identical_images_and_lower_where_they_differ():
    a = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-4)
    b = a.clone()
    b[:, :, 8:16, 8:16] = 1.0 - b[:, :, 8:16, 8:16]
    m = ssim_map(a, b)[0, 0]
    assert m.shape == (32, 32)
    assert m[12, 12] < 0.5 < m[28, 28]


def test_decoder_reaches_any_size_with_four_bilinear_doublings():
    assert halving_sizes(33, 4) == [3, 5, 9, 17, 33]
    assert halving_sizes(256, 4) == [16, 32, 64, 128, 256]
    with torch.no_grad():
        out = ConvDecoder(16, 33, 3, channels=(16, 8, 8, 4), hidden=16).eval()(torch.randn(2, 16))
    assert out.shape == (2, 3, 33, 33) and float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.fixture(scope="module")
def trained_vae():
    torch.set_num_threads(2)
    samples = generate(10, 4, size=64, seed=3)
    vae = registry.create("vae", {"image_size": 64, "base_channels": 8, "latent_dim": 32, "max_steps": 60, "batch_size": 8, "warmup_steps": 5})
    vae.fit(samples[:10], samples[10:])
    return vae, samples


def test_reconstruct_returns_images_in_unit_range_at_working_size(trained_vae):
    vae, samples = trained_vae
    out = vae.reconstruct([s.image for s in samples[:3]])
    assert out.shape == (3, 3, 64, 64)
    assert out.dtype == torch.float32 and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Deterministic: the decoder gets the mean, not a sample, at inference.
    assert torch.equal(out, vae.reconstruct([s.image for s in samples[:3]]))


def test_training_learns_to_reconstruct_and_reports_table_5_1_measures(trained_vae):
    vae, samples = trained_vae
    quality = vae.meta["reconstruction"]
    assert set(quality) == {"l1", "mse", "ssim"}
    untrained = registry.create("vae", vae.config.to_dict())
    images = vae._tensor([s.image for s in samples[:10]])
    before = untrained.reconstruction_quality(images)
    after = vae.reconstruction_quality(images)
    assert after["mse"] < before["mse"]
    assert vae.meta["training"]["validation"] in ("held back", "job")


def test_ssim_anomaly_map_option_gives_maps_in_range(trained_vae):
    vae, samples = trained_vae
    config = {**vae.config.to_dict(), "anomaly_map": "ssim"}
    other = registry.get("vae").from_artifact({**vae.to_artifact(), "config": config})
    maps = np.asarray(other.predict([s.image for s in samples[10:12]]).maps)
    assert maps.shape == (2, 64, 64) and np.all(np.isfinite(maps)) and maps.max() <= 2.0

"""The U-Net's "image + residual" input (thesis 4.1.1, Table 5.2) built from a saved ``vae`` model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import registry
from ml.data.synthetic import generate

SIZE = 32


@pytest.fixture(scope="module")
def saved_vae(tmp_path_factory):
    torch.set_num_threads(2)
    samples = generate(8, 4, size=SIZE, seed=5)
    vae = registry.create("vae", {"image_size": SIZE, "base_channels": 4, "latent_dim": 8, "max_steps": 8, "batch_size": 4, "warmup_steps": 1})
    vae.fit(samples[:8])
    path = tmp_path_factory.mktemp("vae") / "vae.pt"
    vae.save(path)
    return path, vae, samples


def _unet(path, **extra):
    return registry.create(
        "unet",
        {"input": "image+residual", "vae_model": str(path), "image_size": SIZE, "encoder": "plain", "base_channels": 4,
         "max_steps": 3, "warmup_steps": 1, "batch_size": 4, **extra},
    )


def test_residual_channels_are_the_image_minus_the_saved_vaes_reconstruction(saved_vae):
    path, vae, samples = saved_vae
    unet = _unet(path)
    unet._ensure_residual_model()
    images = [s.image for s in samples[8:10]]
    x = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in images]).float() / 255.0
    network_input = unet._network_input(x)
    assert network_input.shape == (2, 6, SIZE, SIZE)
    expected = x - vae.reconstruct(images)
    torch.testing.assert_close(network_input[:, 3:], expected, atol=1e-5, rtol=0)
    assert unet.meta["residual_model"]["source"] == f"file {path}"


def test_saved_unet_carries_the_vae_and_predicts_without_its_file(saved_vae, tmp_path):
    path, _, samples = saved_vae
    copy = tmp_path / "vae-copy.pt"
    copy.write_bytes(path.read_bytes())
    unet = _unet(copy)
    unet.fit(samples[:6] + samples[8:12], samples[6:8] + samples[10:12])
    saved = tmp_path / "unet.pt"
    unet.save(saved)
    copy.unlink()  # the residual model must travel inside the U-Net's artifact
    loaded = registry.load(saved)
    images = [s.image for s in samples[10:12]]
    np.testing.assert_array_equal(np.asarray(loaded.predict(images).maps), np.asarray(unet.predict(images).maps))


def test_a_model_that_is_not_a_vae_is_refused_as_residual_model(saved_vae, tmp_path):
    _, _, samples = saved_vae
    other = registry.create("unet", {"image_size": SIZE, "encoder": "plain", "base_channels": 4, "max_steps": 2, "warmup_steps": 1})
    other.fit(samples[:4] + samples[8:10])
    path = tmp_path / "unet-as-vae.pt"
    other.save(path)
    with pytest.raises(ValueError, match="needs a 'vae' model"):
        _unet(path).fit(samples[:4] + samples[8:10])

"""Behaviour of the reconstruction pipelines beyond the shared contract (issue 11)."""
from __future__ import annotations

import pytest
import torch

from ml import registry
from ml.config import ConfigError
from ml.data.synthetic import generate


def test_utad_refuses_a_vae_model_that_is_not_a_vae(tmp_path):
    torch.set_num_threads(2)
    normal = generate(6, 0, size=64, seed=3)
    ae = registry.create("ae", {"image_size": 64, "max_steps": 2, "warmup_steps": 1, "base_channels": 4})
    ae.fit(normal)
    path = tmp_path / "ae.pt"
    ae.save(path)
    utad = registry.create("utad", {"image_size": 64, "max_steps": 2, "impression_steps": 2, "vae_model": str(path)})
    with pytest.raises(ValueError, match="must be a saved `vae` model"):
        utad.fit(normal)


@pytest.mark.parametrize(
    "name,config,key",
    [
        ("riad", {"image_size": 100}, "image_size"),
        ("riad", {"cell_sizes": []}, "cell_sizes"),
        ("smai", {"n_segments": 10, "masked_superpixels": 10}, "masked_superpixels"),
        ("ganomaly", {"image_size": 96}, "image_size"),
        ("utad", {"combine": "mean"}, "combine"),
        ("ae", {"loss": "l1"}, "loss"),
    ],
)
def test_settings_the_networks_cannot_take_are_refused_by_name(name, config, key):
    with pytest.raises(ConfigError) as err:
        registry.validate_config(name, config)
    assert err.value.key == key


def test_predict_before_fit_says_so():
    pipeline = registry.create("riad", {"image_size": 64})
    with pytest.raises(RuntimeError, match="not fitted"):
        pipeline.predict([generate(1, 0, size=64)[0].image])


def test_utad_infers_in_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    import numpy as np

    images = [s.image for s in generate(3, 0, size=64)]
    utad = registry.create("utad", {"image_size": 64, "device": "cpu"})  # untrained weights will do
    utad.model.eval()
    utad.fitted = True
    utad.config.mixed_precision = False
    exact = utad.predict(images).maps
    # A CPU without AVX512-BF16 or AMX keeps float32 whatever the setting says.
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    utad.config.mixed_precision = True
    assert all(np.array_equal(a, b) for a, b in zip(exact, utad.predict(images).maps))
    # One that has them gets bfloat16 networks: maps close to float32's but not the same, still
    # returned in float32 (the distances and smoothing are computed in float32).
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    fast = utad.predict(images).maps
    assert all(m.dtype == np.float32 for m in fast)
    assert not all(np.array_equal(a, b) for a, b in zip(exact, fast))
    for a, b in zip(exact, fast):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    # mixed_precision = false is the way back to float32 on such a CPU.
    utad.config.mixed_precision = False
    assert all(np.array_equal(a, b) for a, b in zip(exact, utad.predict(images).maps))

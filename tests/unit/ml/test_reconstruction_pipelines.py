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

"""The contract every registered pipeline keeps (DESIGN.md section 4).

Parametrised over ``ml.registry.builtin_names()`` (test-only pipelines that
other test modules register are not products): each pipeline fits on a tiny
deterministic synthetic set, answers ``predict`` with scores (N,), maps at the
input resolution (also for non-square inputs of another size than
``image_size``) and binary masks once it has a threshold, comes back identical
from ``save`` -> ``load``, refuses bad configs naming the key, and stops
training when its ``progress`` callback raises ``Cancelled``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ml import registry
from ml.base import Cancelled, Pipeline
from ml.config import ConfigError
from ml.data.scenes import generate_scenes
from ml.data.synthetic import generate

SIZE = 64  # working resolution for the contract: small keeps the whole file well under a minute
# Smallest settings that still exercise each pipeline's real code path; keys a
# pipeline does not have are simply not passed.
FAST = {
    "image_size": SIZE, "batch_size": 4, "max_steps": 4, "warmup_steps": 1, "base_channels": 8, "coreset_ratio": 0.5,
    "encoder": "plain", "impression_steps": 2,
    # semantic (road-scene) pipelines: the tiny scenes of ml.data.scenes, class 3 unknown
    "image_height": SIZE, "network": "enet", "num_classes": 4, "void_index": 255, "unknown_classes": [3],
}
SEMANTIC = {"num_classes": 4, "void_index": 255, "unknown_classes": [3], "image_height": SIZE}


def _pipeline_class(name: str) -> type[Pipeline]:
    return registry.get(name)


def _fast_config(name: str) -> dict:
    properties = registry.describe(name)["config_schema"]["properties"]
    return {key: value for key, value in FAST.items() if key in properties}


def _train_val(cls: type[Pipeline]):
    if cls.supervision == "semantic":
        scenes = generate_scenes(10, SIZE, SIZE, seed=1)
        return scenes[:6], scenes[6:]
    samples = generate(6, 6, size=SIZE, seed=1)
    normal, anomalous = samples[:6], samples[6:]
    train = normal[:4] + (anomalous[:4] if cls.supervision == "supervised" else [])
    val = normal[4:] + anomalous[4:]
    return train, val


def _test_images() -> list[np.ndarray]:
    """Two non-square images of a size different from the working size."""
    return [s.image[:72, :100].copy() for s in generate(1, 1, size=100, seed=7)]


@pytest.fixture(scope="module", params=registry.builtin_names())
def fitted(request):
    cls = _pipeline_class(request.param)
    torch.set_num_threads(2)
    pipeline = cls(_fast_config(request.param))
    train, val = _train_val(cls)
    calls = []
    pipeline.fit(train, val, progress=lambda stage, fraction, metrics=None: calls.append((stage, fraction, metrics)))
    return pipeline, calls


def test_fit_reports_progress_with_fractions_in_range(fitted):
    pipeline, calls = fitted
    assert calls, f"{pipeline.name}: fit never called progress"
    for stage, fraction, metrics in calls:
        assert isinstance(stage, str) and stage
        assert 0.0 <= fraction <= 1.0
        assert metrics is None or all(isinstance(v, (int, float)) for v in metrics.values())


def test_predict_shapes_ranges_and_masks(fitted):
    pipeline, _ = fitted
    images = _test_images()
    preds = pipeline.predict(images)
    assert preds.scores.shape == (2,)
    assert np.all(np.isfinite(preds.scores))
    maps = np.asarray(preds.maps)
    assert maps.shape == (2, 72, 100)
    assert np.all(np.isfinite(maps))
    assert pipeline.threshold is not None, f"{pipeline.name}: fit with validation data set no threshold"
    masks = np.asarray(preds.masks)
    assert masks.shape == (2, 72, 100)
    assert set(np.unique(masks.astype(np.uint8))) <= {0, 1}


def test_predict_mixed_sizes_gives_one_map_per_input_size(fitted):
    pipeline, _ = fitted
    a, b = _test_images()
    preds = pipeline.predict([a, b[:48, :80].copy()])
    assert [np.asarray(m).shape for m in preds.maps] == [(72, 100), (48, 80)]


def test_save_then_load_gives_identical_maps(fitted, tmp_path):
    pipeline, _ = fitted
    path = tmp_path / "model.pt"
    pipeline.save(path)
    artifact = torch.load(str(path), map_location="cpu", weights_only=True)
    assert artifact["pipeline"] == pipeline.name
    loaded = registry.load(path)
    assert type(loaded) is type(pipeline)
    assert loaded.config.to_dict() == pipeline.config.to_dict()
    assert loaded.threshold == pipeline.threshold
    images = _test_images()
    before, after = pipeline.predict(images), loaded.predict(images)
    np.testing.assert_array_equal(np.asarray(before.maps), np.asarray(after.maps))
    np.testing.assert_array_equal(before.scores, after.scores)


@pytest.mark.parametrize("name", registry.builtin_names())
def test_unknown_config_key_is_refused_by_name(name):
    cls = _pipeline_class(name)
    with pytest.raises(ConfigError) as err:
        cls({"image_size": SIZE, "no_such_setting": 1})
    assert err.value.key == "no_such_setting"
    assert "no_such_setting" in str(err.value)


@pytest.mark.parametrize("name", registry.builtin_names())
def test_wrong_config_type_is_refused_by_name(name):
    cls = _pipeline_class(name)
    with pytest.raises(ConfigError) as err:
        cls({"image_size": "large"})
    assert err.value.key == "image_size"
    with pytest.raises(ConfigError) as err:
        registry.validate_config(name, {"batch_size": 2.5})
    assert err.value.key == "batch_size"


@pytest.mark.parametrize("name", registry.builtin_names())
def test_raising_progress_cancels_fit(name):
    cls = _pipeline_class(name)
    pipeline = cls(_fast_config(name))
    train, val = _train_val(cls)
    calls = []

    def cancel(stage, fraction, metrics=None):
        calls.append(stage)
        raise Cancelled("job cancelled by the user")

    with pytest.raises(Cancelled, match="cancelled by the user"):
        pipeline.fit(train, val, progress=cancel)
    assert len(calls) == 1  # the first report stopped it; nothing ran on


def test_unknown_pipeline_error_lists_the_known_ones():
    with pytest.raises(KeyError) as err:
        registry.get("no-such-pipeline")
    message = str(err.value)
    assert "no-such-pipeline" in message
    for name in registry.names():
        assert name in message
    with pytest.raises(KeyError):
        registry.validate_config("no-such-pipeline", {})


def test_registry_schema_is_json_serialisable():
    available = registry.available()
    data = json.loads(json.dumps(available))
    assert [entry["name"] for entry in data] == registry.names()
    for entry in data:
        assert entry["supervision"] in ("supervised", "unsupervised", "semantic")
        assert entry["description"]
        properties = entry["config_schema"]["properties"]
        size = properties["image_size"]
        assert isinstance(size["default"], int) and size["minimum"] <= size["default"] <= size["maximum"]
        assert entry["config_schema"]["additionalProperties"] is False


def _preset_cases():
    return [(name, preset) for name in registry.builtin_names() for preset in registry.presets(name)]


@pytest.mark.parametrize("name,preset", _preset_cases())
def test_every_preset_validates_fits_and_predicts_on_tiny_data(name, preset):
    """Each named preset is a valid config and trains; only the size and the budget are shrunk."""
    cls = _pipeline_class(name)
    properties = registry.describe(name)["config_schema"]["properties"]
    tiny = {"image_size": SIZE, "max_steps": 3, "warmup_steps": 1, "coreset_ratio": 0.5, "impression_steps": 2}
    if cls.supervision == "semantic":
        tiny.update(SEMANTIC)
    tiny = {k: v for k, v in tiny.items() if k in properties}
    config = registry.validate_config(name, tiny, preset)
    preset_values = registry.presets(name)[preset]["config"]
    for key, value in preset_values.items():
        if key not in tiny:
            assert config[key] == value, f"{name}/{preset}: {key}"
    pipeline = cls(config)
    train, val = _train_val(cls)
    pipeline.fit(train, val)
    preds = pipeline.predict(_test_images())
    assert np.asarray(preds.maps).shape == (2, 72, 100)
    assert np.all(np.isfinite(preds.scores))


def test_presets_are_in_the_schema_and_an_unknown_one_is_refused():
    for name in registry.builtin_names():
        described = registry.describe(name)
        assert "default" in described["presets"]
        assert described["config_schema"]["presets"] == described["presets"]
        with pytest.raises(ConfigError) as err:
            registry.validate_config(name, {}, "no-such-preset")
        assert err.value.key == "preset" and "default" in str(err.value)

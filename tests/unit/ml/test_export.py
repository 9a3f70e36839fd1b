"""Models leave the app: an exported ONNX / TorchScript file gives the same maps
and scores as the app (within 1e-4) on a few images, carries the threshold, and
``python -m ml export`` / ``python -m ml predict --model exported.onnx`` work."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ml import registry
from ml.cli import main
from ml.data.synthetic import generate, write_synthetic_mvtec
from ml.export import ExportedModel, ExportError, export_model, is_exported

SIZE = 64
EXPORTABLE = ["dfr", "patchcore", "unet"]
# Smallest settings that run each pipeline's real code; keys a pipeline does not have are not passed.
FAST = {"image_size": SIZE, "batch_size": 4, "coreset_ratio": 0.5, "max_steps": 4, "warmup_steps": 1,
        "base_channels": 8}


def fast_config(name: str) -> dict:
    properties = registry.describe(name)["config_schema"]["properties"]
    return {key: value for key, value in FAST.items() if key in properties}


@pytest.fixture(scope="module", params=EXPORTABLE)
def fitted(request):
    torch.set_num_threads(2)
    pipeline = registry.create(request.param, fast_config(request.param))
    samples = generate(5, 5, size=SIZE, seed=3)
    normal, anomalous = samples[:5], samples[5:]
    train = normal[:3] + (anomalous[:3] if pipeline.supervision == "supervised" else [])
    pipeline.fit(train, normal[3:] + anomalous[3:])
    return pipeline


def _images() -> list[np.ndarray]:
    """Four images at the working size, normal and anomalous, none seen in training."""
    return [s.image for s in generate(2, 2, size=SIZE, seed=11)]


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_exported_maps_match_the_app_within_1e4(fitted, fmt, suffix, tmp_path):
    images = _images()
    expected = fitted.predict(images)
    path = export_model(fitted, fmt, tmp_path / f"model{suffix}")
    assert is_exported(path)
    exported = ExportedModel(path)
    got = exported.predict(images)
    maps = np.asarray(got.maps)
    assert maps.shape == (4, SIZE, SIZE)
    np.testing.assert_allclose(maps, np.asarray(expected.maps), atol=1e-4, rtol=0)
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4, rtol=1e-5)
    assert exported.threshold == pytest.approx(fitted.threshold)
    assert fitted.region_threshold is not None and exported.region_threshold == pytest.approx(fitted.region_threshold)
    assert exported.normalization == pytest.approx(fitted.normalization)
    # Same regions as the app outlines, at the region threshold (pixels within 1e-4 of it may differ).
    near = np.abs(np.asarray(expected.maps) - fitted.pixel_threshold) < 1e-4
    assert np.array_equal(np.asarray(got.masks)[~near], np.asarray(expected.masks)[~near])


def test_onnx_export_takes_any_batch_size(fitted, tmp_path):
    exported = ExportedModel(export_model(fitted, "onnx", tmp_path / "m.onnx"))
    assert np.asarray(exported.predict(_images()[:1]).maps).shape == (1, SIZE, SIZE)
    assert np.asarray(exported.predict(_images()[:3]).maps).shape == (3, SIZE, SIZE)


def test_a_plain_artifact_is_not_taken_for_an_export(fitted, tmp_path):
    fitted.save(tmp_path / "model.pt")
    assert not is_exported(tmp_path / "model.pt")


def test_unknown_format_is_refused(fitted, tmp_path):
    with pytest.raises(ExportError, match="onnx, torchscript"):
        export_model(fitted, "tflite", tmp_path / "m.tflite")


def test_cli_export_then_predict_with_onnxruntime(tmp_path, capsys):
    data = write_synthetic_mvtec(tmp_path / "data", 4, 2, 2, SIZE, 0, "texture")
    model = tmp_path / "model.pt"
    assert main(["train", "--pipeline", "dfr", "--data", str(data), "--config", json.dumps(fast_config("dfr")), "--out", str(model)]) == 0
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", "--model", str(model), "--format", "onnx", "--out", str(onnx_path)]) == 0
    assert onnx_path.is_file()
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(onnx_path), "--images", str(data / "test"), "--out", str(out)]) == 0
    rows = json.loads((out / "predictions.json").read_text())
    assert len(rows) == 4
    assert all(r["anomalous"] in (True, False) for r in rows)
    assert (out / f"{rows[0]['heatmap']}").is_file()
    assert main(["export", "--model", str(model), "--format", "keras", "--out", str(tmp_path / "x")]) == 2

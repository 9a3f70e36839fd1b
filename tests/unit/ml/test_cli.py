"""python -m ml: train / evaluate / predict / pipelines / synthetic through ml.cli.main.

A tiny test-only pipeline (distance to the mean training image) keeps these
fast and independent of the real pipelines; one test runs patchcore when
it is present.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from ml import registry, thresholds
from ml.base import Pipeline, Predictions, Sample, check_images, no_progress
from ml.cli import main
from ml.data.io import resize_image
from ml.data.synthetic import write_synthetic_mvtec


class MeanDistancePipeline(Pipeline):
    """Anomaly map = colour distance to the mean training image (test only)."""

    name = "test_mean_distance"
    supervision = "unsupervised"
    description = "Distance to the mean normal image (test-only pipeline)."

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.mean: np.ndarray | None = None

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress=no_progress) -> None:
        size = self.config.image_size
        total = np.zeros((size, size, 3), np.float64)
        for i, sample in enumerate(train):
            total += resize_image(sample.image, size)
            progress("features", (i + 1) / len(train), None)
        self.mean = (total / len(train)).astype(np.float32)
        maps = list(self.predict([s.image for s in train]).maps)
        truths = [np.zeros(m.shape, bool) for m in maps]
        self.threshold, source = thresholds.calibrate_pixels(self.config.threshold_policy, maps, truths, fpr=self.config.threshold_fpr)
        self.normalization = thresholds.normalization_from_maps(maps, truths, self.threshold)
        self.meta["threshold_source"] = source
        progress("calibrate", 1.0, {"threshold": self.threshold})

    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        maps = []
        for image in images:
            small = resize_image(image, self.config.image_size).astype(np.float32)
            distance = np.abs(small - self.mean).mean(axis=2)
            maps.append(cv2.resize(distance, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR))
        scores = np.array([m.max() for m in maps], np.float32)
        masks = None if self.threshold is None else [m > self.threshold for m in maps]
        return Predictions(scores, np.stack(maps), None if masks is None else np.stack(masks))

    def state_tensors(self) -> dict[str, Any]:
        return {"mean": torch.from_numpy(self.mean)}

    def load_state_tensors(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].numpy()


registry.register(MeanDistancePipeline)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic_mvtec(tmp_path_factory.mktemp("synthetic"), n_train=8, n_test_normal=4, n_test_anomalous=6, size=64, seed=0, kind="grain")


def test_train_evaluate_predict(synthetic, tmp_path, capsys):
    model = tmp_path / "model.pt"
    config = json.dumps({"image_size": 32, "threshold_policy": "minmax"})
    assert main(["train", "--pipeline", "test_mean_distance", "--data", str(synthetic), "--config", config, "--out", str(model)]) == 0
    assert "saved" in capsys.readouterr().out and model.is_file()

    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(model), "--data", str(synthetic), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for name in ("Image AUROC", "Pixel AUROC", "AU-PRO", "Pixel AUPR", "Pixel F1-max", "Pixel IoU at threshold", "Mean per-image Dice"):
        assert name in out
    saved = json.loads(report.read_text())
    assert saved["metrics"]["images"] == 10 and saved["metrics"]["anomalous_images"] == 6
    assert saved["metrics"]["image_auroc"] > 0.5
    assert "pixel_roc" in saved["curves"]
    # The MVTec defect folders give a row per kind.
    assert "per defect kind" in out
    kinds = sorted(p.name for p in (synthetic / "test").iterdir() if p.name != "good")
    assert sorted(saved["per_kind"]) == kinds and len(kinds) >= 2
    assert sum(m["images"] for m in saved["per_kind"].values()) == 6

    out_dir = tmp_path / "pred"
    images = synthetic / "test"
    assert main(["predict", "--model", str(model), "--images", str(images), "--out", str(out_dir)]) == 0
    rows = json.loads((out_dir / "predictions.json").read_text())
    assert len(rows) == 10
    heatmap = np.array(Image.open(out_dir / rows[0]["heatmap"]))
    assert heatmap.shape == (64, 64, 3)
    assert len(list(out_dir.glob("*_overlay.png"))) == 10
    assert all(isinstance(r["anomalous"], bool) for r in rows)


def test_pipelines_lists_schemas(capsys):
    assert main(["pipelines", "--json"]) == 0
    described = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert {"patchcore", "unet", "test_mean_distance"} <= set(described)
    assert described["test_mean_distance"]["config_schema"]["properties"]["image_size"]["default"] == 256
    assert main(["pipelines"]) == 0
    assert "test_mean_distance  (unsupervised)" in capsys.readouterr().out


def test_user_errors_are_one_line_messages(synthetic, tmp_path, capsys):
    assert main(["train", "--pipeline", "nope", "--data", str(synthetic), "--out", str(tmp_path / "m.pt")]) == 2
    assert "unknown pipeline 'nope'; known pipelines:" in capsys.readouterr().err
    assert main(["train", "--pipeline", "test_mean_distance", "--data", str(synthetic), "--config", '{"image_sise": 3}', "--out", str(tmp_path / "m.pt")]) == 2
    assert "image_sise: unknown key" in capsys.readouterr().err
    assert main(["train", "--pipeline", "test_mean_distance", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "layout not recognised" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path / "missing.pt"), "--data", str(synthetic)]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_synthetic_command(tmp_path, capsys):
    assert main(["synthetic", "--out", str(tmp_path / "s"), "--train", "2", "--normal", "1", "--anomalous", "3", "--size", "32"]) == 0
    assert len(list((tmp_path / "s" / "train" / "good").glob("*.png"))) == 2
    assert len(list((tmp_path / "s" / "ground_truth").rglob("*_mask.png"))) == 3
    assert main(["synthetic", "--out", str(tmp_path / "t"), "--kind", "marble"]) == 2


def test_patchcore_through_the_cli(synthetic, tmp_path, capsys):
    if not (Path(__file__).resolve().parents[3] / "ml" / "pipelines" / "patchcore" / "pipeline.py").is_file():
        pytest.skip("patchcore is not present yet")
    torch.set_num_threads(2)
    model = tmp_path / "patchcore.pt"
    config = json.dumps({"image_size": 64, "batch_size": 8})
    assert main(["train", "--pipeline", "patchcore", "--data", str(synthetic), "--config", config, "--out", str(model)]) == 0
    report = tmp_path / "r.json"
    assert main(["evaluate", "--model", str(model), "--data", str(synthetic), "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["image_auroc"] >= 0.8 and metrics["pixel_auroc"] >= 0.8

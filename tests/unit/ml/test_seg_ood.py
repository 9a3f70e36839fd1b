"""Road-scene segmentation + OOD scores: each score against a hand-computed logit tensor, the networks'
building blocks, ENet's class weights, AuPRC / FPR95, and a tiny model that learns scenes and finds the
unknown object."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml.components.segmentation import build
from ml.components.segmentation.enet import Bottleneck, InitialBlock
from ml.components.segmentation.erfnet import NonBottleneck1D
from ml.config import ConfigError
from ml.data.scenes import generate_scenes
from ml.metrics.ood import class_iou, ood_pixel_metrics
from ml.pipelines.seg_ood.config import SegOODConfig
from ml.pipelines.seg_ood.pipeline import SegOODPipeline, enet_class_weights
from ml.pipelines.seg_ood.scores import anomaly_scores, calibrate_temperature

# One pixel, three classes: logits (2, 0, ln 2) -> softmax (e^2, 1, 2) / (e^2 + 3).
LOGITS = torch.tensor([2.0, 0.0, math.log(2.0)]).view(1, 3, 1, 1)
Z = math.exp(2) + 3


def test_msp_eq7():
    assert float(anomaly_scores(LOGITS, "msp")) == pytest.approx(1 - math.exp(2) / Z)


def test_maxlogit_eq8():
    assert float(anomaly_scores(LOGITS, "maxlogit")) == pytest.approx(-2.0)


def test_max_entropy_eq9():
    p = np.array([math.exp(2), 1, 2]) / Z
    assert float(anomaly_scores(LOGITS, "max_entropy")) == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-6)


def test_msp_with_temperature_eq10():
    # T = 2: logits (1, 0, ln 2 / 2) -> softmax (e, 1, sqrt 2) / (e + 1 + sqrt 2)
    expected = 1 - math.e / (math.e + 1 + math.sqrt(2))
    assert float(anomaly_scores(LOGITS, "msp_temperature", temperature=2.0)) == pytest.approx(expected, rel=1e-6)
    assert float(anomaly_scores(LOGITS, "msp_temperature", temperature=1.0)) == pytest.approx(float(anomaly_scores(LOGITS, "msp")))


def test_void_probability_eq11_and_void_left_out_of_the_others():
    # Channel 2 is void: its softmax probability over all three channels is the score.
    assert float(anomaly_scores(LOGITS, "void", void_index=2)) == pytest.approx(2 / Z)
    # MSP over the known classes 0 and 1 only: e^2 / (e^2 + 1).
    assert float(anomaly_scores(LOGITS, "msp", void_index=2)) == pytest.approx(1 - math.exp(2) / (math.exp(2) + 1))
    with pytest.raises(ValueError, match="void class"):
        anomaly_scores(LOGITS, "void")


def test_temperature_calibration_picks_the_lowest_nll_on_the_paper_grid():
    # Over-confident logits that are often wrong: a softer temperature fits better.
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (2, 8, 8), generator=generator)
    logits = torch.randn(2, 3, 8, 8, generator=generator) * 6
    best, nll = calibrate_temperature(logits, labels, ignore_index=255)
    assert set(nll) == {0.5, 0.75, 1.0, 1.1, 1.5, 2.0}
    assert best == 2.0 and nll[2.0] < nll[1.0] < nll[0.5]


def test_enet_class_weights():
    weights = enet_class_weights(np.array([900, 90, 10]))
    expected = 1 / np.log(1.02 + np.array([0.9, 0.09, 0.01]))
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights[2] > weights[1] > weights[0]  # rare classes weigh more


def test_building_blocks_keep_shapes_and_factorise():
    block = NonBottleneck1D(16, 0.0, dilation=4)
    kernels = [m.kernel_size for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(3, 1), (1, 3), (3, 1), (1, 3)]  # non-bottleneck-1D: factorised 3x3s
    assert block(torch.zeros(1, 16, 12, 12)).shape == (1, 16, 12, 12)
    assert InitialBlock()(torch.zeros(1, 3, 32, 32)).shape == (1, 16, 16, 16)  # 13 conv maps + 3 pooled
    down = Bottleneck(16, 64, downsample=True)
    out, indices = down(torch.zeros(1, 16, 16, 16))
    assert out.shape == (1, 64, 8, 8) and indices.shape == (1, 16, 8, 8)
    asym = Bottleneck(32, 32, kind="asymmetric")
    assert any(m.kernel_size == (5, 1) for m in asym.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize("name", ["erfnet", "enet", "bisenet", "lite0_unet"])
def test_networks_give_class_logits_at_input_size(name):
    net = build(name, 5, pretrained=False).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 96)).shape == (1, 5, 64, 96)
    if name == "bisenet":
        logits, aux = net(torch.zeros(1, 3, 64, 96), with_aux=True)
        assert len(aux) == 2 and all(a.shape == logits.shape for a in aux)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(1, 3, 60, 96))


def test_auprc_and_fpr95_against_a_hand_computed_case():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]], np.float32)
    anomalous = np.array([[True, False, True, False]])
    counted = np.ones_like(anomalous)
    out = ood_pixel_metrics([(scores, anomalous, counted)], bins=1000)
    # Ranked: + - + -: precision at the positives 1 and 2/3 -> AP = (1 + 2/3) / 2.
    assert out["auprc"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-3)
    assert out["fpr95"] == pytest.approx(0.5)  # both positives need the 0.7 threshold: 1 of 2 negatives above
    # Void pixels are left out: the negative at 0.8 uncounted makes the ranking perfect.
    counted[0, 1] = False
    out = ood_pixel_metrics([(scores, anomalous, counted)], bins=1000)
    assert out["auprc"] == pytest.approx(1.0) and out["fpr95"] == pytest.approx(0.0)
    assert class_iou(np.array([[3, 1], [0, 0]])) == [0.75, 0.0]


def test_config_checks_name_the_key():
    with pytest.raises(ConfigError) as err:
        SegOODConfig.from_dict({"score": "void"})
    assert err.value.key == "score"
    with pytest.raises(ConfigError) as err:
        SegOODConfig.from_dict({"void_index": 3})
    assert err.value.key == "void_index"
    with pytest.raises(ConfigError) as err:
        SegOODConfig.from_dict({"num_classes": 4, "unknown_classes": [7]})
    assert err.value.key == "unknown_classes"


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(2)
    scenes = generate_scenes(24, 64, 64, seed=3)
    pipeline = SegOODPipeline({
        "network": "enet", "image_size": 64, "image_height": 64, "num_classes": 4, "unknown_classes": [3],
        "void_index": 255, "max_steps": 150, "batch_size": 8, "learning_rate": 5e-3, "val_every": 25, "patience": 0,
        "warmup_steps": 10,
    })
    pipeline.fit(scenes[:16], scenes[16:])
    return pipeline, generate_scenes(8, 64, 64, seed=11)


def test_a_tiny_model_learns_the_scenes_and_scores_the_unknown_object_higher(trained):
    pipeline, test = trained
    assert pipeline.meta["training"]["best_value"] > 0.8  # validation mIoU over sky, building, road
    out = pipeline.predict([s.image for s in test])
    classes = np.stack([s.classes for s in test])
    assert out.class_maps.shape == classes.shape
    known = np.isin(classes, [0, 1, 2])
    assert (out.class_maps[known] == classes[known]).mean() > 0.9
    assert set(np.unique(out.class_maps)) <= {0, 1, 2}  # never predicts the unknown class
    unknown = classes == 3
    assert out.maps[unknown].mean() > out.maps[known].mean()
    metrics = ood_pixel_metrics([(m, c == 3, c != 255) for m, c in zip(out.maps, classes)])
    assert metrics["auprc"] > unknown.mean()  # above the chance level (the share of unknown pixels)
    assert metrics["fpr95"] < 1.0


def test_the_score_changes_without_retraining_and_survives_save_load(trained, tmp_path):
    from ml import registry

    pipeline, test = trained
    images = [s.image for s in test[:2]]
    maxlogit = pipeline.predict(images).maps
    pipeline.use_score("max_entropy")
    entropy = pipeline.predict(images).maps
    assert not np.allclose(maxlogit, entropy)
    assert pipeline.temperature in (0.5, 0.75, 1.0, 1.1, 1.5, 2.0)  # calibrated on validation pixels
    pipeline.save(tmp_path / "seg.pt")
    loaded = registry.load(tmp_path / "seg.pt")
    np.testing.assert_array_equal(loaded.predict(images).maps, entropy)
    assert loaded.temperature == pipeline.temperature
    pipeline.use_score("maxlogit")

"""ml.thresholds: policies, normalisation, the pixel-map variant."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ml.config import PipelineConfig
from ml.thresholds import calibrate, calibrate_pixels, calibrate_region, denormalize, normalization_from_maps, normalize

NORMAL = np.arange(1, 21, dtype=float)  # 1 .. 20


def test_fpr_policy_keeps_at_most_the_accepted_share_of_normal_images_above():
    config = PipelineConfig.from_dict({"threshold_policy": "fpr", "threshold_fpr": 0.1})
    threshold, normalization = calibrate(normal_scores=NORMAL, config=config)
    assert threshold == 19.0
    assert np.mean(NORMAL > threshold) <= 0.1
    assert normalize(threshold, normalization) == pytest.approx(0.5)
    assert normalize(1.0, normalization) == 0.0
    assert calibrate(normal_scores=NORMAL, policy="fpr", fpr=0.0)[0] == 20.0


def test_minmax_policy_with_margin():
    assert calibrate(normal_scores=NORMAL, policy="minmax")[0] == 20.0
    assert calibrate(normal_scores=NORMAL, policy="minmax", margin=0.1)[0] == pytest.approx(20 + 1.9)


def test_f1_policy_on_labelled_scores_and_fallback_to_fpr():
    scores = [0.1, 0.2, 0.3, 0.55, 0.7, 0.9]
    labels = [0, 0, 0, 1, 1, 1]
    threshold, normalization = calibrate(labelled_scores=scores, labels=labels, policy="f1")
    assert 0.3 < threshold < 0.55
    assert normalization["max"] == 0.9 and normalization["min"] == 0.1
    assert normalize(np.array(scores), normalization).tolist()[3] > 0.5 > normalize(0.3, normalization)
    # one class only: falls back to the accepted FPR on the normal scores
    threshold, _ = calibrate(normal_scores=NORMAL, labelled_scores=[5.0], labels=[0], policy="f1", fpr=0.05)
    assert threshold == 19.0 and np.mean(np.r_[NORMAL, 5.0] > threshold) <= 0.05


def test_manual_threshold_is_read_on_the_normalised_scale():
    threshold, normalization = calibrate(normal_scores=[0.0, 1.0], labelled_scores=[3.0], labels=[1], policy="manual", manual_threshold=0.5)
    assert threshold == pytest.approx(1.5)
    assert normalize(threshold, normalization) == pytest.approx(0.5)
    assert calibrate(policy="manual", manual_threshold=0.7) == (0.7, {})
    with pytest.raises(ValueError, match="needs manual_threshold"):
        calibrate(normal_scores=NORMAL, policy="manual")


def test_config_subclass_fields_are_used():
    @dataclasses.dataclass
    class WithMargin(PipelineConfig):
        threshold_margin: float = 0.5

    config = WithMargin.from_dict({"threshold_policy": "minmax"})
    assert calibrate(normal_scores=[0.0, 2.0], config=config)[0] == 3.0


def test_no_data_and_bad_input():
    assert calibrate(policy="fpr") == (None, {})
    with pytest.raises(ValueError, match="unknown threshold policy"):
        calibrate(normal_scores=NORMAL, policy="otsu")
    with pytest.raises(ValueError, match="NaN"):
        calibrate(normal_scores=[1.0, float("nan")])
    with pytest.raises(ValueError, match="labels"):
        calibrate(labelled_scores=[1.0, 2.0], labels=[1])


def test_normalize_round_trip_and_identity():
    normalization = {"min": 1.0, "threshold": 3.0, "max": 11.0}
    values = np.array([1.0, 2.0, 3.0, 7.0, 11.0])
    assert normalize(values, normalization).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [denormalize(v, normalization) for v in (0.0, 0.25, 0.5, 0.75, 1.0)] == values.tolist()
    assert normalize(np.array([0.0, 20.0]), normalization).tolist() == [0.0, 1.0]
    assert normalize(np.array([-1.0, 2.0]), {}, clip=False).tolist() == [-1.0, 2.0]


def _maps():
    rng = np.random.default_rng(0)
    maps, truths = [], []
    for i in range(20):
        m = rng.random((16, 16)).astype(np.float32) * 0.5
        t = np.zeros((16, 16), bool)
        if i >= 10:
            t[4:8, 4:8] = True
            m[t] += 0.6
        maps.append(m)
        truths.append(t)
    return maps, truths


def test_calibrate_pixels_policies():
    maps, truths = _maps()
    normal_max = np.array([m.max() for m in maps[:10]])
    threshold, source = calibrate_pixels("fpr", maps, truths, fpr=0.1)
    assert np.mean(normal_max > threshold) <= 0.1 and "normal images" in source
    assert calibrate_pixels("minmax", maps, truths)[0] == pytest.approx(normal_max.max())
    f1_threshold, source = calibrate_pixels("f1", maps, truths)
    lowest_anomalous = min(m[t].min() for m, t in zip(maps, truths) if t.any())
    highest_normal = max(m[~t].max() for m, t in zip(maps, truths))
    assert f1_threshold == pytest.approx((lowest_anomalous + highest_normal) / 2, abs=1e-3) and "F1" in source
    predicted = np.stack(maps) > f1_threshold
    assert (predicted == np.stack(truths)).mean() > 0.99
    manual, _ = calibrate_pixels("manual", maps, truths, manual_threshold=0.5)
    assert normalize(manual, normalization_from_maps(maps, truths)) == pytest.approx(0.5)
    assert calibrate_pixels("fpr", maps[10:], truths[10:]) == (None, "no normal images to calibrate on")


# --- the region threshold (which pixels are outlined) --------------------------------------

def _maps_with_one_defect():
    rng = np.random.default_rng(0)
    normal = [rng.uniform(0, 1, (20, 20)).astype(np.float32) for _ in range(5)]
    anomalous = rng.uniform(0, 1, (20, 20)).astype(np.float32)
    truth = np.zeros((20, 20), bool)
    truth[5:10, 5:10] = True
    anomalous[truth] += 3.0  # the defect: far above every normal pixel
    anomalous[0, 0] = 2.5  # one hot normal pixel: a loose threshold outlines it
    return normal + [anomalous], [np.zeros((20, 20), bool)] * 5 + [truth]


def test_region_fpr_accepts_the_share_of_normal_pixels_dfr_iii_d():
    maps, truths = _maps_with_one_defect()
    threshold, source = calibrate_region("fpr", maps, truths, fpr=0.01)
    normal_pixels = np.concatenate([m.ravel() for m in maps[:5]])
    assert np.mean(normal_pixels > threshold) <= 0.01
    assert np.mean(normal_pixels > threshold - 1e-3) > 0.005  # not needlessly high
    assert "pixel FPR 0.01 on 5 normal images" in source
    assert calibrate_region("fpr", maps, truths, fpr=0.0)[0] == pytest.approx(max(m.max() for m in maps[:5]))


def test_region_f1_outlines_the_annotated_pixels_and_falls_back_without_them():
    maps, truths = _maps_with_one_defect()
    threshold, source = calibrate_region("f1", maps, truths)
    outlined = maps[5] > threshold
    assert (outlined == truths[5]).all(), "F1-optimal region is exactly the annotated defect"
    assert "F1-optimal" in source
    normal_only, _ = calibrate_region("f1", maps[:5], truths[:5], fpr=0.01)
    assert normal_only == calibrate_region("fpr", maps[:5], truths[:5], fpr=0.01)[0]
    assert calibrate_region("image", maps, truths, image_threshold=1.5) == (1.5, "the image threshold")
    assert calibrate_region("fpr", [maps[5]], [truths[5]])[0] is None
    with pytest.raises(ValueError, match="unknown region policy"):
        calibrate_region("best", maps, truths)

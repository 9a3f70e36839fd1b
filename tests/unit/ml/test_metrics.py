"""ml.metrics: hand-computed cases, agreement with scikit-learn, memory behaviour."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ml.metrics import (
    Counts,
    confusion_matrix,
    evaluate,
    evaluation,
    f1_optimal_threshold,
    mean_iou,
    pr_curve_points,
    roc_curve_points,
    score_histogram,
)


def test_hand_computed_pixel_auroc_and_thresholded_metrics():
    anomaly_map = np.array([[0.1, 0.4], [0.35, 0.8]], np.float32)
    mask = np.array([[0, 0], [255, 255]], np.uint8)
    m = evaluate([0.8], [anomaly_map], [mask], [1], threshold=0.3)
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered right
    assert m["pixel_auroc"] == pytest.approx(0.75, abs=1e-4)
    # at 0.3: predicted {0.4, 0.35, 0.8}: TP 2, FP 1, FN 0, TN 1
    assert m["pixel_accuracy"] == pytest.approx(0.75)
    assert m["pixel_iou"] == pytest.approx(2 / 3)
    assert m["pixel_dice"] == pytest.approx(0.8)
    assert m["pixel_precision"] == pytest.approx(2 / 3) and m["pixel_recall"] == 1.0
    assert m["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["mean_auroc"] == pytest.approx(0.75)
    assert "image_auroc" not in m  # one class only: undefined, left out


def test_hand_computed_aupro():
    # one row: region A = pixels 0-1 (0.9), region B = pixel 5 (0.5), 7 normal pixels: one at 0.6, six at 0.2.
    anomaly_map = np.array([[0.9, 0.9, 0.6, 0.2, 0.2, 0.5, 0.2, 0.2, 0.2, 0.2]], np.float32)
    mask = np.array([[1, 1, 0, 0, 0, 1, 0, 0, 0, 0]], np.uint8)
    m = evaluate(None, [anomaly_map], [mask])
    # PRO 0.5 for FPR in [0, 1/7], then 1 up to 0.3: (1/7 * 0.5 + (0.3 - 1/7)) / 0.3
    assert m["aupro"] == pytest.approx((0.5 / 7 + 0.3 - 1 / 7) / 0.3, abs=1e-4)
    # F1-max: at 0.5 TP 3, FP 1 -> 6/7
    assert m["pixel_f1_max"] == pytest.approx(6 / 7, abs=1e-6)
    assert 0.2 < m["threshold"] < 0.5 + 1e-6
    assert m["pixel_fpr_at_95_tpr"] == pytest.approx(1 / 7, abs=1e-4)


def _random_set(n=24, size=24, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    labels = []
    for i in range(n):
        if i % 2:
            y, x = rng.integers(0, size - 6, 2)
            masks[i, y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = 255
        labels.append(i % 2)
    maps = rng.normal(size=(n, size, size)).astype(np.float32) + 1.5 * (masks > 0)
    scores = maps.reshape(n, -1).max(axis=1) + rng.normal(scale=0.5, size=n)
    return scores, maps, masks, labels


def test_agrees_with_scikit_learn():
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    scores, maps, masks, labels = _random_set()
    m = evaluate(scores, maps, masks, labels)
    truth, flat = masks.reshape(-1) > 0, maps.reshape(-1)
    assert m["pixel_auroc"] == pytest.approx(roc_auc_score(truth, flat), abs=1e-4)
    precision, recall, _ = precision_recall_curve(truth, flat)
    assert m["pixel_aupr"] == pytest.approx(auc(recall, precision), abs=2e-3)
    assert m["pixel_aupr"] == pytest.approx(average_precision_score(truth, flat), abs=2e-2)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    assert m["pixel_f1_max"] == pytest.approx(f1.max(), abs=1e-3)
    fpr, tpr, _ = roc_curve(truth, flat)
    assert m["pixel_fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-3)

    assert m["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    p, r, _ = precision_recall_curve(labels, scores)
    assert m["image_aupr"] == pytest.approx(auc(r, p), abs=1e-12)
    assert m["image_f1_max"] == pytest.approx((2 * p * r / np.maximum(p + r, 1e-12)).max(), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert m["image_fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])
    # beside the image AUROC, its 95% interval over these images, as the model-version page shows it
    assert m["image_auroc_low"] < m["image_auroc"] < m["image_auroc_high"]
    assert "image_auroc_low" not in evaluate(scores, maps, masks, np.zeros_like(labels))


def test_aupro_matches_a_direct_computation():
    import cv2

    _, maps, masks, _ = _random_set(n=10, size=20, seed=3)
    truth = masks > 0
    regions = []
    for t in truth:
        count, labelled = cv2.connectedComponents(t.astype(np.uint8), connectivity=8)
        regions += [labelled == k for k in range(1, count)]
    region_index = [(i, r) for i, t in enumerate(truth) for r in regions if r.shape == t.shape and (r & t).any() and (r & ~t).sum() == 0]
    thresholds = np.unique(maps)[::-1]
    negatives = ~truth
    xs, ys = [0.0], [0.0]
    for t in thresholds:
        predicted = maps >= t
        xs.append((predicted & negatives).sum() / negatives.sum())
        ys.append(np.mean([(predicted[i] & r).sum() / r.sum() for i, r in region_index]))
    xs, ys = np.array(xs), np.array(ys)
    end = np.searchsorted(xs, 0.3, side="right")
    y_cut = np.interp(0.3, xs[end - 1 : end + 1], ys[end - 1 : end + 1])
    expected = np.trapezoid(np.r_[ys[:end], y_cut], np.r_[xs[:end], 0.3]) / 0.3
    assert evaluate(None, maps, masks)["aupro"] == pytest.approx(expected, abs=2e-3)


def test_thesis_per_image_means():
    masks = [np.array([[1, 1], [0, 0]]), np.zeros((2, 2), int)]
    maps = [np.array([[0.9, 0.2], [0.7, 0.1]]), np.array([[0.1, 0.1], [0.1, 0.1]])]
    m = evaluate(None, maps, masks, threshold=0.5)
    # image 1: TP 1, FN 1, FP 1, TN 1 -> acc 0.5, dice 0.5, iou 1/3; image 2: all correct, empty: 1, 1, 1
    assert m["mean_accuracy"] == pytest.approx(0.75)
    assert m["mean_dice"] == pytest.approx(0.75)
    assert m["mean_iou"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["mean_auroc"] == pytest.approx(0.75)  # only image 1 has both classes: 0.9, 0.2 vs 0.7, 0.1
    assert m["image_accuracy"] == 1.0


def test_ground_truth_binarised_once_for_any_encoding():
    anomaly_map = np.array([[0.9, 0.1], [0.2, 0.8]])
    base = evaluate(None, [anomaly_map], [np.array([[255, 0], [0, 255]], np.uint8)])
    for mask in (np.array([[1, 0], [0, 1]], np.uint8), np.array([[True, False], [False, True]]), np.array([[0.9, 0.1], [0.4, 0.6]])):
        assert evaluate(None, [anomaly_map], [mask]) == base


def test_labels_masks_and_sizes_are_reconciled():
    small = np.zeros((4, 4), np.float32)
    small[:2, :2] = 1.0
    big_mask = np.zeros((8, 8), np.uint8)
    big_mask[:4, :4] = 255
    m = evaluate(None, [small, np.zeros((6, 5), np.float32), np.ones((3, 3), np.float32)], [big_mask, None, None], [None, 0, 1])
    assert m["images"] == 3 and m["anomalous_images"] == 2  # label from the mask for image 0
    assert m["pixel_auroc"] > 0.9  # map upsampled to the 8x8 mask; image 2 (no pixel truth) left out
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([1.0], [small, small], None)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(None, [np.full((2, 2), np.nan)], [np.zeros((2, 2))])


def test_curves_for_display():
    scores, maps, masks, labels = _random_set(n=40, size=24)
    result = evaluation(scores, maps, masks, labels)
    for key in ("pixel_roc", "pixel_pr", "image_roc", "image_pr"):
        curve = result.curves[key]
        assert 2 <= len(next(iter(curve.values()))) <= 200
    assert result.curves["pixel_roc"]["fpr"][0] == 0.0 and result.curves["pixel_roc"]["tpr"][-1] == 1.0
    histogram = result.curves["image_histogram"]
    assert sum(histogram["normal"]) == 20 and sum(histogram["anomalous"]) == 20
    assert len(histogram["edges"]) == len(histogram["normal"]) + 1
    many = np.linspace(0, 1, 1000)
    curve = roc_curve_points(many, (many > 0.3).astype(int) ^ (np.arange(1000) % 7 == 0))
    assert len(curve["fpr"]) <= 200 and curve["fpr"][0] == 0 and curve["tpr"][-1] == 1
    assert pr_curve_points([0.1, 0.9], [0, 1]) == {"precision": [1.0, 1.0, 0.5], "recall": [0.0, 1.0, 1.0], "thresholds": [0.9, 0.9, 0.1]}
    assert roc_curve_points([0.1, 0.2], [0, 0]) == {"fpr": [], "tpr": [], "thresholds": []}
    assert score_histogram([0.5], [1], bins=3)["anomalous"] == [1.0, 0.0, 0.0]


def test_f1_optimal_threshold_and_miou():
    t = f1_optimal_threshold(np.array([0.1, 0.2, 0.6, 0.9]), np.array([0, 0, 1, 1]))
    assert t == pytest.approx(0.4)
    confusion = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert confusion.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert mean_iou(confusion) == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert Counts.of(np.array([True, False]), np.array([False, False])).iou() == 0.0


def test_memory_stays_far_below_all_pixels_in_float64():
    rng = np.random.default_rng(0)
    n, size = 1000, 64
    masks = np.zeros((n, size, size), np.uint8)
    masks[n // 2 :, 10:20, 10:30] = 255
    maps = rng.random((n, size, size), dtype=np.float32)
    maps[masks > 0] += 0.5
    evaluate(None, maps[:2], masks[:2])  # warm imports outside the measurement
    tracemalloc.start()
    try:
        m = evaluate(None, maps, masks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    all_float64 = n * size * size * 8
    assert peak < all_float64 / 3, f"peak {peak / 1e6:.1f} MB"
    assert 0.85 < m["pixel_auroc"] < 0.95


def test_no_anomalous_pixel_leaves_pixel_scores_at_a_threshold_out():
    # Anomalous images without masks, normal ones all-normal: nothing to find, so precision,
    # recall and overlaps are undefined (not a perfect 1.000 to compare models by).
    maps = [np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32)]
    masks = [np.zeros((8, 8), np.uint8), None]
    metrics = evaluate(None, maps, masks, labels=[0, 1], threshold=0.5)
    assert metrics["pixel_accuracy"] == 1.0
    assert not {"pixel_precision", "pixel_recall", "pixel_iou", "pixel_dice", "miou"} & set(metrics)


def test_the_image_auroc_interval_holds_the_figure_and_narrows_with_more_images():
    from ml.metrics.image import auroc_interval, image_metrics

    rng = np.random.default_rng(3)

    def drawn(n):
        scores = np.r_[rng.normal(1.5, 1.0, n), rng.normal(0.0, 1.0, n)]
        return scores, np.r_[np.ones(n, int), np.zeros(n, int)]

    small, large = drawn(40), drawn(400)
    for scores, labels in (small, large):
        low, high = auroc_interval(scores, labels)
        assert low < image_metrics(scores, labels)["image_auroc"] < high
    small_width = np.subtract(*auroc_interval(*small)[::-1])
    large_width = np.subtract(*auroc_interval(*large)[::-1])
    assert 0.08 < small_width < 0.2 and large_width < 0.5 * small_width  # about 1 / sqrt(10) as wide
    assert auroc_interval(*small) == auroc_interval(*small)  # seeded: a benchmark's interval repeats
    assert auroc_interval(*small, seed=1) != auroc_interval(*small)
    # Perfectly ranked images leave no doubt; one class alone has no AUROC.
    assert auroc_interval(np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, 0, 0])) == (1.0, 1.0)
    assert auroc_interval(np.array([1.0, 2.0]), np.array([0, 0])) is None
    with pytest.raises(ValueError, match="level"):
        auroc_interval(*small, level=1.5)


def test_the_image_auroc_interval_of_a_very_large_set_is_the_normal_approximation():
    from ml.metrics.image import auroc_interval, image_metrics

    rng = np.random.default_rng(4)
    n = 5001  # 25 million pairs: more than the bootstrap holds
    scores = np.r_[rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)]
    labels = np.r_[np.ones(n, int), np.zeros(n, int)]
    low, high = auroc_interval(scores, labels)
    area = image_metrics(scores, labels)["image_auroc"]
    assert low < area < high and 0.01 < high - low < 0.03  # Hanley-McNeil at n = 5001: about 0.019 wide

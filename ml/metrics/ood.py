"""Road-scene anomaly segmentation metrics (road-scene paper, Tables 2-4): AuPRC and FPR at 95% TPR
over anomaly pixels, from binned counts so any number of images streams through in constant memory."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ml.metrics.binned import PixelHistogram


def ood_pixel_metrics(items: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], bins: int = 1 << 14) -> dict[str, float | None]:
    """``items``: (scores (H, W), anomalous (H, W) bool, counted (H, W) bool) per image; pixels with
    ``counted`` False (void) are left out. Returns ``auprc`` and ``fpr95`` (None without both kinds of pixel)."""
    items = list(items)
    values = [s[c] for s, _, c in items if c.any()]
    if not values:
        return {"auprc": None, "fpr95": None}
    lo = float(min(v.min() for v in values))
    hi = float(max(v.max() for v in values))
    histogram = PixelHistogram(lo, hi if hi > lo else lo + 1e-6, bins)
    for scores, anomalous, counted in items:
        histogram.positive += np.bincount(histogram.bin_index(scores[counted & anomalous]), minlength=bins)
        histogram.negative += np.bincount(histogram.bin_index(scores[counted & ~anomalous]), minlength=bins)
    if histogram.positive.sum() == 0 or histogram.negative.sum() == 0:
        return {"auprc": None, "fpr95": None}
    tp = histogram.true_positives().astype(np.float64)
    fp = histogram.false_positives().astype(np.float64)
    positives, negatives = tp[-1], fp[-1]
    recall = tp / positives
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    # Step-wise area under the PR curve (average precision).
    auprc = float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))
    index = int(np.searchsorted(recall, 0.95, side="left"))
    fpr95 = float(fp[min(index, len(fp) - 1)] / negatives)
    return {"auprc": auprc, "fpr95": fpr95}


def class_iou(confusion: np.ndarray) -> list[float | None]:
    """Per-class IoU from a confusion matrix (rows target, columns predicted); None for an absent class."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return [float(t / u) if u > 0 else None for t, u in zip(tp, union)]

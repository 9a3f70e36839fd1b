"""One entry point for every metric: :func:`evaluate` (numbers) and :func:`evaluation` (numbers + curves).

Inputs, for N images:

- ``scores``: (N,) image scores, higher = more anomalous; None -> the maximum of each map.
- ``maps``: (N, H, W) array or a list of (H_i, W_i) anomaly maps; None for image-level only.
  A map whose size differs from its mask is resized bilinearly to the mask.
- ``masks``: a list (or (N, H, W) array) of ground-truth masks, entries may be None
  (no pixel truth: a normal image then counts as all-normal, others are left out
  of pixel metrics). Binarised once, ``> 0.5`` after scaling to [0, 1].
- ``labels``: 0/1/None per image; None -> anomalous when the mask has any anomalous pixel.
- ``threshold``: on the map/score scale, ``> threshold`` is anomalous. None -> the
  pixel F1-optimal threshold (the image F1-optimal one without maps); that is an
  oracle choice, optimistic for the thresholded metrics.

The maps are read three times (range, histogram, thresholded counts) and never
copied whole: memory stays a few per-image arrays plus fixed-size histograms
(see :mod:`ml.metrics.binned` for the accuracy of the binning). Metrics that
the data leave undefined (an AUROC with one class, say) are left out of the
result rather than given as NaN.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from ml.metrics.binned import DEFAULT_BINS, PixelHistogram
from ml.metrics.curves import MAX_POINTS, downsample, pr_curve_points, roc_curve_points, score_histogram
from ml.metrics.image import auroc_interval, f1_optimal_threshold, image_metrics
from ml.metrics.segmentation import Counts, PerImageMeans, binarize_truth, image_auroc

# Every key evaluate() may return, with a one-line meaning (the CLI table and the UI show these).
METRICS: dict[str, str] = {
    "image_auroc": "Image AUROC",
    "image_auroc_low": "Image AUROC, 95% interval: low (bootstrap over these images)",
    "image_auroc_high": "Image AUROC, 95% interval: high (bootstrap over these images)",
    "image_aupr": "Image AUPR",
    "image_f1_max": "Image F1-max",
    "image_fpr_at_95_tpr": "Image FPR at 95% TPR",
    "pixel_auroc": "Pixel AUROC",
    "aupro": "AU-PRO up to 30% FPR (normalised)",
    "pixel_aupr": "Pixel AUPR",
    "pixel_f1_max": "Pixel F1-max",
    "pixel_fpr_at_95_tpr": "Pixel FPR at 95% TPR",
    "threshold": "Threshold used below (map/score > threshold)",
    "region_threshold": "Region threshold used by the pixel metrics below (map > threshold)",
    "image_accuracy": "Image accuracy at threshold",
    "pixel_accuracy": "Pixel accuracy at threshold",
    "pixel_precision": "Pixel precision at threshold",
    "pixel_recall": "Pixel recall at threshold",
    "pixel_iou": "Pixel IoU at threshold",
    "pixel_dice": "Pixel Dice at threshold",
    "miou": "mIoU (anomaly, normal) at threshold",
    "mean_accuracy": "Mean per-image accuracy (thesis 5.1)",
    "mean_dice": "Mean per-image Dice / F1 (thesis 5.2)",
    "mean_iou": "Mean per-image IoU (thesis 5.5)",
    "mean_auroc": "Mean per-image AUROC (thesis 5.6)",
    "images": "Images with a label",
    "anomalous_images": "Anomalous images",
}


# Which way each metric is better, for comparing models: "higher", "lower", or None for
# what describes rather than judges (counts, thresholds). Every key of METRICS is here.
LOWER_IS_BETTER = frozenset({"image_fpr_at_95_tpr", "pixel_fpr_at_95_tpr"})
NOT_COMPARED = frozenset({"threshold", "region_threshold", "images", "anomalous_images", "image_auroc_low", "image_auroc_high"})
DIRECTION: dict[str, str | None] = {
    key: None if key in NOT_COMPARED else "lower" if key in LOWER_IS_BETTER else "higher" for key in METRICS
}


@dataclasses.dataclass
class Evaluation:
    metrics: dict[str, float]
    curves: dict[str, Any]


def evaluate(
    scores: Sequence[float] | np.ndarray | None,
    maps: Sequence[np.ndarray] | np.ndarray | None,
    masks: Sequence[np.ndarray | None] | np.ndarray | None,
    labels: Sequence[int | None] | None = None,
    threshold: float | None = None,
    bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """Every metric as ``{name: value}`` (keys from :data:`METRICS`); see the module docstring."""
    return evaluation(scores, maps, masks, labels, threshold, bins, curves=False).metrics


def evaluation(
    scores: Sequence[float] | np.ndarray | None,
    maps: Sequence[np.ndarray] | np.ndarray | None,
    masks: Sequence[np.ndarray | None] | np.ndarray | None,
    labels: Sequence[int | None] | None = None,
    threshold: float | None = None,
    bins: int = DEFAULT_BINS,
    curves: bool = True,
    max_points: int = MAX_POINTS,
    region_threshold: float | None = None,
) -> Evaluation:
    """Metrics plus, when ``curves``, display data: image ROC / PR points, the pixel ROC / PR
    (at most ``max_points`` points each) and histograms of normal vs anomalous image scores.

    ``region_threshold``: when given, the pixel metrics at a threshold use it (the pixels a
    model outlines) and ``threshold`` only decides images."""
    n = _count(scores, maps, masks, labels)
    truth_source = list(masks) if masks is not None else [None] * n
    if scores is None:
        if maps is None:
            raise ValueError("give image scores, anomaly maps or both")
        scores = [float(np.max(m)) for m in maps]
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("image scores contain NaN or infinite values")
    labels = [_label(labels[i] if labels is not None else None, truth_source[i]) for i in range(n)]
    known = np.array([label is not None for label in labels])
    image_labels = np.array([label if label is not None else -1 for label in labels])

    metrics: dict[str, float] = {}
    metrics["images"] = float(known.sum())
    metrics["anomalous_images"] = float((image_labels == 1).sum())
    metrics.update(image_metrics(scores[known], image_labels[known]))
    # How much the AUROC could move on another draw of as many images: on the few validation or
    # test images of a small project, two versions 0.05 apart may not differ at all.
    interval = auroc_interval(scores[known], image_labels[known])
    if interval is not None:
        metrics["image_auroc_low"], metrics["image_auroc_high"] = interval
    result_curves: dict[str, Any] = {}

    histogram = None
    if maps is not None:
        pixel_items = lambda: _pixel_items(maps, truth_source, labels)  # noqa: E731 (re-iterable)
        histogram, per_image_auroc = _histogram(pixel_items, bins)
        if histogram is not None:
            metrics.update(_curve_metrics(histogram))
            if threshold is None and histogram.n_positive:
                threshold = histogram.f1_max()[1]  # type: ignore[index]
    if threshold is None:
        threshold = f1_optimal_threshold(scores[known], image_labels[known])
    if threshold is not None:
        metrics["threshold"] = float(threshold)
        if known.any():
            metrics["image_accuracy"] = float(np.mean((scores[known] > threshold) == (image_labels[known] == 1)))
        if histogram is not None:
            pixel_cut = threshold if region_threshold is None else float(region_threshold)
            if region_threshold is not None:
                metrics["region_threshold"] = pixel_cut
            metrics.update(_thresholded(pixel_items(), pixel_cut, per_image_auroc))

    if curves:
        result_curves["image_roc"] = roc_curve_points(scores[known], image_labels[known], max_points)
        result_curves["image_pr"] = pr_curve_points(scores[known], image_labels[known], max_points)
        result_curves["image_histogram"] = score_histogram(scores[known], image_labels[known])
        if histogram is not None and histogram.n_positive and histogram.n_negative:
            fpr, tpr = histogram.roc()
            precision, recall = histogram.pr()
            edges = histogram.edges()
            result_curves["pixel_roc"] = downsample({"fpr": fpr, "tpr": tpr, "thresholds": edges}, max_points, "fpr", "tpr")
            result_curves["pixel_pr"] = downsample(
                {"precision": precision, "recall": recall, "thresholds": edges}, max_points, "recall", "precision"
            )
    return Evaluation(metrics, result_curves)


def _count(*inputs: Any) -> int:
    lengths = {len(x) for x in inputs if x is not None}
    if not lengths:
        raise ValueError("nothing to evaluate")
    if len(lengths) > 1:
        raise ValueError(f"scores, maps, masks and labels differ in length: {sorted(lengths)}")
    return lengths.pop()


def _label(label: int | None, mask: np.ndarray | None) -> int | None:
    if label is not None:
        if label not in (0, 1, True, False):
            raise ValueError(f"labels must be 0, 1 or None, got {label!r}")
        return int(label)
    if mask is not None:
        return int(binarize_truth(mask).any())
    return None


def _pixel_items(maps, masks, labels) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(map float32, truth bool) of the images with pixel ground truth, map resized to the truth."""
    for i, raw_map in enumerate(maps):
        mask = masks[i]
        anomaly_map = np.asarray(raw_map, dtype=np.float32)
        if anomaly_map.ndim != 2:
            raise ValueError(f"map {i}: expected (H, W), got shape {anomaly_map.shape}")
        if mask is None:
            if labels[i] != 0:
                continue
            truth = np.zeros(anomaly_map.shape, bool)
        else:
            truth = binarize_truth(mask)
        if truth.shape != anomaly_map.shape:
            anomaly_map = cv2.resize(anomaly_map, (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_LINEAR)
        yield anomaly_map, truth


def _histogram(pixel_items, bins: int) -> tuple[PixelHistogram | None, list[float | None]]:
    lo, hi, any_items = np.inf, -np.inf, False
    for i, (anomaly_map, _) in enumerate(pixel_items()):
        if not np.all(np.isfinite(anomaly_map)):
            raise ValueError(f"map {i} contains NaN or infinite values")
        lo, hi, any_items = min(lo, float(anomaly_map.min())), max(hi, float(anomaly_map.max())), True
    if not any_items:
        return None, []
    histogram = PixelHistogram(lo, hi, bins)
    per_image_auroc = []
    for anomaly_map, truth in pixel_items():
        regions = None
        if truth.any():
            _, regions = cv2.connectedComponents(truth.astype(np.uint8), connectivity=8)
        histogram.add(anomaly_map, truth, regions)
        per_image_auroc.append(image_auroc(anomaly_map, truth))
    return histogram, per_image_auroc


def _curve_metrics(histogram: PixelHistogram) -> dict[str, float]:
    values = {
        "pixel_auroc": histogram.auroc(),
        "aupro": histogram.aupro(),
        "pixel_aupr": histogram.aupr(),
        "pixel_f1_max": (histogram.f1_max() or (None,))[0],
        "pixel_fpr_at_95_tpr": histogram.fpr_at_tpr(0.95),
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def _thresholded(items, threshold: float, per_image_auroc: list[float | None]) -> dict[str, float]:
    pooled, means = Counts(), PerImageMeans()
    for (anomaly_map, truth), auroc in zip(items, per_image_auroc):
        counts = Counts.of(anomaly_map > threshold, truth)
        pooled += counts
        means.add(counts, auroc)
    if pooled.tp + pooled.fn == 0:
        # No anomalous pixel to find: precision, recall and overlaps would read as a perfect 1.
        return {"pixel_accuracy": pooled.accuracy()}
    return {
        "pixel_accuracy": pooled.accuracy(),
        "pixel_precision": pooled.precision(),
        "pixel_recall": pooled.recall(),
        "pixel_iou": pooled.iou(),
        "pixel_dice": pooled.dice(),
        "miou": (pooled.iou() + pooled.background_iou()) / 2,
        **means.result(),
    }

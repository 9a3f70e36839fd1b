"""Judging a freshly trained model on the labelled validation/test images of its snapshot."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

EVAL_BATCH = 8
HISTOGRAM_BINS = 30
CURVE_POINTS = 200


@dataclasses.dataclass
class Outcome:
    threshold: float
    policy: str
    normalization: dict[str, float]
    metrics: dict[str, Any]
    curves: dict[str, Any]


def evaluate_model(pipeline, *, train: Sequence, evaluation: Sequence, config: dict, progress: Callable, log: Callable) -> Outcome:
    """Threshold (as calibrated by the pipeline's ``fit`` per the config's policy), every
    ``ml`` metric on the images that have ground truth, and the curves the UI draws."""
    if pipeline.threshold is None:
        raise RuntimeError(f"pipeline {pipeline.name} finished fitting without a threshold")
    threshold = float(pipeline.threshold)
    policy = str(pipeline.meta.get("threshold_source") or config.get("threshold_policy", ""))
    if not evaluation:
        log("no labelled validation/test images: the model version has no metrics")
        return Outcome(threshold, policy, dict(pipeline.normalization), {}, {})
    scores, maps = [], []
    for start in range(0, len(evaluation), EVAL_BATCH):
        progress("evaluating", start / len(evaluation))
        out = pipeline.predict([s.image for s in evaluation[start : start + EVAL_BATCH]])
        scores.extend(float(v) for v in np.asarray(out.scores).reshape(-1))
        maps.extend(np.asarray(m, dtype=np.float32) for m in out.maps)
    progress("evaluating", 1.0)
    labels = np.array([s.label for s in evaluation], dtype=np.int64)
    metrics = _metrics(evaluation, np.asarray(scores), maps, labels, threshold)
    curves = _curves(np.asarray(scores), labels, threshold)
    return Outcome(threshold, policy, dict(pipeline.normalization), metrics, curves)


def _metrics(evaluation, scores: np.ndarray, maps: list[np.ndarray], labels: np.ndarray, threshold: float) -> dict[str, Any]:
    from ml import metrics as ml_metrics

    masks = [s.mask for s in evaluation]
    with_masks = [i for i, m in enumerate(masks) if m is not None]
    result = ml_metrics.evaluate(
        scores=scores,
        labels=labels,
        maps=[maps[i] for i in with_masks] if with_masks else None,
        masks=[masks[i] for i in with_masks] if with_masks else None,
        threshold=threshold,
    )
    result = {k: _plain(v) for k, v in dict(result).items()}
    predicted = scores > threshold
    result.update(
        images=int(len(labels)),
        normal_images=int((labels == 0).sum()),
        anomalous_images=int((labels == 1).sum()),
        image_accuracy=float((predicted == (labels == 1)).mean()),
        image_false_positive_rate=float(predicted[labels == 0].mean()) if (labels == 0).any() else None,
        image_recall=float(predicted[labels == 1].mean()) if (labels == 1).any() else None,
    )
    return result


def _curves(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Image-level ROC and PR curves (when both classes exist) and the score histogram
    of normal vs anomalous images, in plain lists for the browser."""
    from ml import metrics as ml_metrics

    curves: dict[str, Any] = {"threshold": threshold, "histogram": _histogram(scores, labels, threshold)}
    if (labels == 0).any() and (labels == 1).any():
        fpr, tpr, _ = ml_metrics.roc_curve(labels, scores)
        precision, recall, _ = ml_metrics.pr_curve(labels, scores)
        curves["roc"] = {"fpr": _thin(fpr), "tpr": _thin(tpr)}
        curves["pr"] = {"recall": _thin(recall), "precision": _thin(precision)}
    return curves


def _histogram(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    low = float(min(scores.min(), threshold))
    high = float(max(scores.max(), threshold))
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {
        "edges": [float(e) for e in edges],
        "normal": [int(c) for c in np.histogram(scores[labels == 0], bins=edges)[0]],
        "anomalous": [int(c) for c in np.histogram(scores[labels == 1], bins=edges)[0]],
    }


def _thin(values) -> list[float]:
    """At most CURVE_POINTS evenly spaced points of a curve (first and last kept)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) > CURVE_POINTS:
        values = values[np.unique(np.linspace(0, len(values) - 1, CURVE_POINTS).round().astype(int))]
    return [round(float(v), 6) for v in values]


def _plain(value: Any) -> Any:
    """JSON-safe: numpy numbers to floats, NaN/inf to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value

"""Judging a freshly trained model on the labelled validation/test images of its snapshot."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from inspection.services.inference import image_score

EVAL_BATCH = 8


@dataclasses.dataclass
class Outcome:
    threshold: float
    policy: str
    normalization: dict[str, float]
    metrics: dict[str, Any]
    curves: dict[str, Any]


def evaluate_model(
    pipeline, *, train: Sequence, evaluation: Sequence, config: dict, progress: Callable, log: Callable,
    kinds: Sequence[str | None] | None = None,
) -> Outcome:
    """Threshold (as calibrated by the pipeline's ``fit`` per the config's policy), every
    ``ml`` metric on the images that have ground truth, and the curves the UI draws.
    ``kinds``: the defect kind of each evaluation image (None: from MVTec folder names);
    with two kinds or more, ``metrics["per_kind"]`` holds recall and AU-PRO per kind."""
    if pipeline.threshold is None:
        raise RuntimeError(f"pipeline {pipeline.name} finished fitting without a threshold")
    threshold = float(pipeline.threshold)
    policy = str(pipeline.meta.get("threshold_source") or config.get("threshold_policy", ""))
    if not evaluation:
        log("no labelled validation/test images: the model version has no metrics")
        return Outcome(threshold, policy, dict(pipeline.normalization), {}, {})
    scores, maps, class_maps = [], [], []
    for start in range(0, len(evaluation), EVAL_BATCH):
        progress("evaluating", start / len(evaluation))
        out = pipeline.predict([s.image for s in evaluation[start : start + EVAL_BATCH]])
        batch_maps = [np.asarray(m, dtype=np.float32) for m in out.maps]
        if out.class_maps is not None:
            class_maps.extend(np.asarray(c, dtype=np.uint8) for c in out.class_maps)
        # Scored as stored predictions will be, so metrics at the threshold match the flags users see.
        scores.extend(image_score(m) for m in batch_maps)
        maps.extend(batch_maps)
    progress("evaluating", 1.0)
    labels = np.array([s.label for s in evaluation], dtype=np.int64)
    metrics, curves = _evaluate(evaluation, np.asarray(scores), maps, labels, threshold)
    per_kind = _per_kind(evaluation, np.asarray(scores), maps, labels, threshold, kinds)
    if per_kind:
        metrics["per_kind"] = per_kind
        log("per defect kind: " + ", ".join(f"{k} recall {v['image_recall']:.2f}" for k, v in per_kind.items()))
    if class_maps:
        semantic_metrics, semantic_curves = semantic_evaluation(
            evaluation, maps, class_maps, known=pipeline.config.known_classes(),
            unknown=list(pipeline.config.unknown_classes), void_index=pipeline.config.void_index,
        )
        metrics.update(semantic_metrics)
        curves.update(semantic_curves)
    return Outcome(threshold, policy, dict(pipeline.normalization), metrics, curves)


def _evaluate(evaluation, scores: np.ndarray, maps: list[np.ndarray], labels: np.ndarray, threshold: float):
    """Every ``ml`` metric at the model's threshold, plus image/pixel ROC and PR points and the
    histogram of normal vs anomalous image scores (``ml.metrics`` computes all of them)."""
    from ml.metrics.evaluate import evaluation as ml_evaluation

    result = ml_evaluation(scores, maps, [s.mask for s in evaluation], labels=list(labels), threshold=threshold)
    metrics = {k: _plain(v) for k, v in result.metrics.items()}
    predicted = scores > threshold
    metrics.update(
        normal_images=int((labels == 0).sum()),
        image_false_positive_rate=float(predicted[labels == 0].mean()) if (labels == 0).any() else None,
        image_recall=float(predicted[labels == 1].mean()) if (labels == 1).any() else None,
    )
    curves = {k: _plain(v) for k, v in result.curves.items()}
    curves["threshold"] = threshold
    return metrics, curves


def _per_kind(evaluation, scores, maps, labels, threshold: float, kinds) -> dict[str, Any]:
    from ml.metrics.per_kind import kind_from_path, per_kind_metrics

    if kinds is None:
        kinds = [kind_from_path(s.name) for s in evaluation]
    return _plain(per_kind_metrics(scores, maps, [s.mask for s in evaluation], list(labels), list(kinds), threshold))

def semantic_evaluation(
    evaluation: Sequence, maps: list[np.ndarray], class_maps: list[np.ndarray], *, known: list[int],
    unknown: list[int], void_index: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Road-scene metrics (road-scene paper, Tables 2-4): per-class IoU and mIoU over the known
    classes' pixels, and the anomaly AuPRC / FPR95 with its PR curve over the unknown classes'
    pixels against the known ones (void left out). AuPRC / FPR95 are None without unknown pixels."""
    from ml.metrics.ood import class_iou, ood_pixel_metrics

    lookup = np.full(256, len(known), np.int64)  # anything not a known class: an extra "other" column
    lookup[known] = np.arange(len(known))
    size = len(known) + 1
    confusion = np.zeros((size, size), np.int64)
    items = []
    for sample, anomaly_map, predicted in zip(evaluation, maps, class_maps):
        truth = np.asarray(sample.classes)
        target, guess = lookup[truth], lookup[predicted]
        keep = target < len(known)
        confusion += np.bincount(target[keep] * size + guess[keep], minlength=size * size).reshape(size, size)
        items.append((anomaly_map, np.isin(truth, unknown), truth != void_index))
    ious = class_iou(confusion)[: len(known)]
    present = [v for v in ious if v is not None]
    ood = ood_pixel_metrics(items, curve_points=200) if unknown else {"auprc": None, "fpr95": None}
    metrics = {
        "miou": float(np.mean(present)) if present else None,
        "class_iou": {str(index): iou for index, iou in zip(known, ious)},
        "anomaly_auprc": ood["auprc"],
        "anomaly_fpr95": ood["fpr95"],
    }
    curves = {"anomaly_pr": _plain(ood.get("pr_curve") or {"recall": [], "precision": [], "thresholds": []})}
    return _plain(metrics), curves


def _plain(value: Any) -> Any:
    """JSON-safe: numpy numbers to floats, NaN/inf to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value

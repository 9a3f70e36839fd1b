"""Curve points for display: downsampled ROC / PR curves and score histograms."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ml.metrics.image import precision_recall, roc

MAX_POINTS = 200


def downsample(columns: dict[str, np.ndarray], max_points: int = MAX_POINTS, x: str | None = None, y: str | None = None) -> dict[str, list[float]]:
    """Keep at most ``max_points`` rows of equally long columns, first and last always kept.

    With ``x`` and ``y`` named, rows are picked evenly along the curve's length
    in that plane (a ROC curve's steep start keeps its shape); otherwise evenly by position.
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError("curve columns must have equal lengths")
    (n,) = lengths
    if n <= max_points:
        index = np.arange(n)
    elif x is not None and y is not None:
        step = np.hypot(np.diff(np.asarray(columns[x], np.float64)), np.diff(np.asarray(columns[y], np.float64)))
        length = np.concatenate([[0.0], np.cumsum(step)])
        targets = np.linspace(0.0, length[-1], max_points)
        index = np.unique(np.clip(np.searchsorted(length, targets), 0, n - 1))
        index[0], index[-1] = 0, n - 1
    else:
        index = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))
    return {k: [float(v) for v in np.asarray(col, dtype=np.float64)[index]] for k, col in columns.items()}


def roc_curve_points(scores: Sequence[float], labels: Sequence[int], max_points: int = MAX_POINTS) -> dict[str, list[float]]:
    """Image-level ROC: ``{"fpr": [...], "tpr": [...], "thresholds": [...]}``, at most ``max_points`` points.

    Empty lists when only one class is present.
    """
    scores, labels = _clean(scores, labels)
    if len(set(labels.tolist())) < 2:
        return {"fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thresholds = roc(scores, labels)
    thresholds = np.where(np.isfinite(thresholds), thresholds, scores.max())
    return downsample({"fpr": fpr, "tpr": tpr, "thresholds": thresholds}, max_points, "fpr", "tpr")


def pr_curve_points(scores: Sequence[float], labels: Sequence[int], max_points: int = MAX_POINTS) -> dict[str, list[float]]:
    """Image-level precision-recall: ``{"precision", "recall", "thresholds"}`` (recall rising)."""
    scores, labels = _clean(scores, labels)
    if len(set(labels.tolist())) < 2:
        return {"precision": [], "recall": [], "thresholds": []}
    precision, recall, thresholds = precision_recall(scores, labels)
    thresholds = np.where(np.isfinite(thresholds), thresholds, scores.max())
    return downsample({"precision": precision, "recall": recall, "thresholds": thresholds}, max_points, "recall", "precision")


def score_histogram(scores: Sequence[float], labels: Sequence[int], bins: int = 30) -> dict[str, list[float]]:
    """Counts of normal and anomalous image scores over shared ``edges`` (``bins + 1`` values)."""
    scores, labels = _clean(scores, labels)
    if len(scores) == 0:
        return {"edges": [], "normal": [], "anomalous": []}
    lo, hi = float(scores.min()), float(scores.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    normal, _ = np.histogram(scores[labels == 0], edges)
    anomalous, _ = np.histogram(scores[labels == 1], edges)
    return {"edges": edges.tolist(), "normal": normal.astype(float).tolist(), "anomalous": anomalous.astype(float).tolist()}


def _clean(scores: Sequence[float], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray([-1 if v is None else int(v) for v in labels])
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    keep = labels >= 0
    return scores[keep], labels[keep]

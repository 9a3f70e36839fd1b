"""Anomaly detection metrics: image and pixel level, memory-aware (see :mod:`ml.metrics.evaluate`)."""
from ml.metrics.binned import PixelHistogram
from ml.metrics.curves import pr_curve_points, roc_curve_points, score_histogram
from ml.metrics.evaluate import METRICS, Evaluation, evaluate, evaluation
from ml.metrics.image import f1_optimal_threshold, image_metrics
from ml.metrics.segmentation import Counts, binarize_truth, confusion_matrix, mean_iou

__all__ = [
    "METRICS",
    "Counts",
    "Evaluation",
    "PixelHistogram",
    "binarize_truth",
    "confusion_matrix",
    "evaluate",
    "evaluation",
    "f1_optimal_threshold",
    "image_metrics",
    "mean_iou",
    "pr_curve_points",
    "roc_curve_points",
    "score_histogram",
]

"""Thresholded pixel metrics: pooled counts, the thesis' per-image means, mIoU.

Conventions where a ratio is 0/0 (an image without anomalous pixels and
without any predicted): IoU, Dice and precision/recall count as 1 (a perfect
"nothing here"). The per-image AUROC mean (thesis eq. 5.6) averages over the
images that have both anomalous and normal pixels only.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def binarize_truth(mask: np.ndarray) -> np.ndarray:
    """Ground truth as bool, once: ``> 0.5`` after scaling to [0, 1].

    bool masks are kept; integer masks with values above 1 are divided by 255
    (0/255 PNGs), 0/1 integer masks are taken as they are; float masks are
    taken as already in [0, 1].
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype == bool:
        return m
    if np.issubdtype(m.dtype, np.integer):
        return m > (127 if m.size and m.max() > 1 else 0)
    return m > 0.5


@dataclasses.dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @classmethod
    def of(cls, predicted: np.ndarray, truth: np.ndarray) -> "Counts":
        tp = int(np.count_nonzero(predicted & truth))
        fp = int(np.count_nonzero(predicted)) - tp
        fn = int(np.count_nonzero(truth)) - tp
        return cls(tp, fp, truth.size - tp - fp - fn, fn)

    def __iadd__(self, other: "Counts") -> "Counts":
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn
        return self

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else 1.0

    def iou(self) -> float:
        union = self.tp + self.fp + self.fn
        return self.tp / union if union else 1.0

    def dice(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 1.0

    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def background_iou(self) -> float:
        union = self.tn + self.fp + self.fn
        return self.tn / union if union else 1.0


def image_auroc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """AUROC of one image's pixels (Mann-Whitney U with tied ranks averaged); None without both classes."""
    positives = int(np.count_nonzero(truth))
    negatives = truth.size - positives
    if not positives or not negatives:
        return None
    rank_sum = float(_average_ranks(scores.reshape(-1))[truth.reshape(-1)].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values), np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]
    return ranks


class PerImageMeans:
    """Running thesis means (eq. 5.1, 5.2, 5.5, 5.6) over images."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []
        self.dice: list[float] = []
        self.iou: list[float] = []
        self.auroc: list[float] = []

    def add(self, counts: Counts, auroc: float | None) -> None:
        self.accuracy.append(counts.accuracy())
        self.dice.append(counts.dice())
        self.iou.append(counts.iou())
        if auroc is not None:
            self.auroc.append(auroc)

    def result(self) -> dict[str, float]:
        out = {}
        for key, values in (("mean_accuracy", self.accuracy), ("mean_dice", self.dice), ("mean_iou", self.iou), ("mean_auroc", self.auroc)):
            if values:
                out[key] = float(np.mean(values))
        return out


def confusion_matrix(predicted: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = target class, columns = predicted class."""
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    target = np.asarray(target).reshape(-1).astype(np.int64)
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    if np.any((predicted[keep] < 0) | (predicted[keep] >= num_classes)):
        raise ValueError(f"predicted classes must lie in [0, {num_classes})")
    return np.bincount(target[keep] * num_classes + predicted[keep], minlength=num_classes**2).reshape(num_classes, num_classes)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean over classes present (in target or prediction) of TP / (TP + FP + FN)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else 1.0

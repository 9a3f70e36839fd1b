"""Pixel-level curves from binned counts, so large test sets stream through in constant memory.

Scores are sorted into ``bins`` equal-width bins spanning the observed
[min, max] of all maps (a first pass finds the range). Per bin we keep integer
counts of anomalous and normal pixels, and for AU-PRO the sum over anomalous
pixels of ``1 / size of their ground-truth region``. Thresholds are the bin
edges, a pixel counting as positive at edge ``k`` when its bin is ``>= k``.
The only approximation is that scores closer than ``(max - min) / bins`` are
treated as tied: with the default 2**16 bins curve areas agree with exact
computations to about 1e-4. Memory: a few arrays of ``bins`` numbers,
whatever the number of images.
"""
from __future__ import annotations

import numpy as np

DEFAULT_BINS = 1 << 16
PRO_FPR_LIMIT = 0.3


class PixelHistogram:
    """Accumulates per-bin pixel counts over images; then answers curve metrics."""

    def __init__(self, lo: float, hi: float, bins: int = DEFAULT_BINS):
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
            raise ValueError(f"invalid score range [{lo}, {hi}]")
        self.lo, self.hi, self.bins = float(lo), float(hi), int(bins)
        self.scale = self.bins / (self.hi - self.lo) if self.hi > self.lo else 0.0
        self.positive = np.zeros(self.bins, np.int64)
        self.negative = np.zeros(self.bins, np.int64)
        self.region_weight = np.zeros(self.bins, np.float64)
        self.regions = 0

    def bin_index(self, scores: np.ndarray) -> np.ndarray:
        index = ((scores.astype(np.float64, copy=False) - self.lo) * self.scale).astype(np.int64)
        return np.clip(index, 0, self.bins - 1, out=index)

    def add(self, scores: np.ndarray, truth: np.ndarray, regions: np.ndarray | None = None) -> None:
        """``scores`` (H, W) float, ``truth`` (H, W) bool, ``regions`` (H, W) int region ids (0 = background)."""
        index = self.bin_index(scores)
        self.positive += np.bincount(index[truth], minlength=self.bins)
        self.negative += np.bincount(index[~truth], minlength=self.bins)
        if regions is not None and regions.max() > 0:
            ids = regions[truth]
            sizes = np.bincount(ids)
            self.region_weight += np.bincount(index[truth], weights=1.0 / sizes[ids], minlength=self.bins)
            self.regions += int(np.count_nonzero(sizes[1:]))

    # --- curves, thresholds descending (from "nothing positive" to "everything positive") ---
    def edges(self) -> np.ndarray:
        """Threshold of each curve point: edge ``k`` for k = bins .. 0."""
        return self.lo + np.arange(self.bins, -1, -1) / self.scale if self.scale else np.full(self.bins + 1, self.lo)

    def _cumulative(self, counts: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(counts[::-1])])

    def true_positives(self) -> np.ndarray:
        return self._cumulative(self.positive)

    def false_positives(self) -> np.ndarray:
        return self._cumulative(self.negative)

    @property
    def n_positive(self) -> int:
        return int(self.positive.sum())

    @property
    def n_negative(self) -> int:
        return int(self.negative.sum())

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, tpr), both rising from 0 to 1."""
        return self.false_positives() / max(self.n_negative, 1), self.true_positives() / max(self.n_positive, 1)

    def auroc(self) -> float | None:
        if not self.n_positive or not self.n_negative:
            return None
        fpr, tpr = self.roc()
        return float(np.trapezoid(tpr, fpr))

    def pr(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) as recall rises; precision 1 where nothing is predicted positive."""
        tp, fp = self.true_positives().astype(np.float64), self.false_positives().astype(np.float64)
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)
        return precision, tp / max(self.n_positive, 1)

    def aupr(self) -> float | None:
        """Area under the precision-recall curve by the trapezoid rule (as anomalib's AUPR)."""
        if not self.n_positive:
            return None
        precision, recall = self.pr()
        return float(np.trapezoid(precision, recall))

    def f1_max(self) -> tuple[float, float] | None:
        """(best F1, threshold): pixels with score > threshold are positive."""
        if not self.n_positive:
            return None
        tp, fp = self.true_positives(), self.false_positives()
        f1 = 2 * tp / np.maximum(2 * tp + fp + (self.n_positive - tp), 1)
        k = int(np.argmax(f1))
        return float(f1[k]), self._threshold_at(k)

    def fpr_at_tpr(self, tpr_target: float = 0.95) -> float | None:
        if not self.n_positive or not self.n_negative:
            return None
        fpr, tpr = self.roc()
        k = int(np.argmax(tpr >= tpr_target - 1e-12))
        return float(fpr[k])

    def aupro(self, fpr_limit: float = PRO_FPR_LIMIT) -> float | None:
        """Area under the per-region-overlap curve for FPR in [0, fpr_limit], divided by fpr_limit.

        PRO at a threshold is the mean over all ground-truth regions (connected
        components) of the fraction of the region above the threshold.
        """
        if not self.regions or not self.n_negative:
            return None
        fpr = self.false_positives() / self.n_negative
        pro = self._cumulative(self.region_weight) / self.regions
        end = int(np.searchsorted(fpr, fpr_limit, side="right"))
        xs, ys = fpr[:end], pro[:end]
        if end < len(fpr) and fpr[end] > fpr[end - 1]:
            # the curve is cut at exactly fpr_limit by linear interpolation
            t = (fpr_limit - fpr[end - 1]) / (fpr[end] - fpr[end - 1])
            xs = np.append(xs, fpr_limit)
            ys = np.append(ys, pro[end - 1] + t * (pro[end] - pro[end - 1]))
        return float(np.trapezoid(ys, xs) / fpr_limit)

    def _threshold_at(self, k: int) -> float:
        """Threshold for ``score > t`` matching curve point ``k`` (bins >= bins - k positive).

        Halfway between the lowest positive bin and the next lower occupied bin,
        so the decisions hold with a margin on data like the calibration data.
        """
        if k == 0 or not self.scale:
            return float(self.hi) if k == 0 else float(np.nextafter(self.lo, -np.inf))
        first = self.bins - k
        lower = np.flatnonzero((self.positive[:first] + self.negative[:first]) > 0)
        edge = self.lo + first / self.scale
        if not lower.size:
            return float(np.nextafter(edge, -np.inf))
        return float((edge + self.lo + (lower[-1] + 1) / self.scale) / 2)

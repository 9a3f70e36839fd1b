"""Image-level metrics from one score per image: exact, sorting all scores (there are few images).

Plain numpy (the same construction as scikit-learn's curves, against which
the tests check it), so the web and CLI processes need not import scikit-learn.
"""
from __future__ import annotations

import numpy as np


def ranked_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds descending, true positives, false positives) for ``score >= threshold`` at each distinct score."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order].astype(np.int64)
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_value]
    fp = last_of_value + 1 - tp
    return sorted_scores[last_of_value], tp, fp


def roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) from (0, 0) to (1, 1); the first threshold is +inf."""
    thresholds, tp, fp = ranked_counts(scores, labels)
    fpr = np.r_[0.0, fp / max(fp[-1], 1)]
    tpr = np.r_[0.0, tp / max(tp[-1], 1)]
    return fpr, tpr, np.r_[np.inf, thresholds]


def precision_recall(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with recall rising from 0 (precision 1 there, threshold +inf)."""
    thresholds, tp, fp = ranked_counts(scores, labels)
    precision = tp / (tp + fp)
    recall = tp / max(tp[-1], 1)
    return np.r_[1.0, precision], np.r_[0.0, recall], np.r_[np.inf, thresholds]


def image_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR (trapezoid, as the pixel AUPR), F1-max and FPR at 95% TPR; empty without both classes."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return {}
    fpr, tpr, _ = roc(scores, labels)
    precision, recall, _ = precision_recall(scores, labels)
    return {
        "image_auroc": float(np.trapezoid(tpr, fpr)),
        "image_aupr": float(np.trapezoid(precision, recall)),
        "image_f1_max": float(_f1(precision, recall).max()),
        "image_fpr_at_95_tpr": float(fpr[np.argmax(tpr >= 0.95 - 1e-12)]),
    }


def auroc_interval(
    scores: np.ndarray, labels: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the image AUROC at ``level``: the anomalous and the normal
    images are each resampled with replacement, keeping both counts (a stratified bootstrap), and
    every resample's AUROC is the share of (anomalous, normal) pairs ranked right, ties counting
    half. Seeded, so a benchmark's interval repeats. None without both classes.

    On 40 + 40 images it is wide: 0.863-0.985 around the rail benchmark's 0.929.
    """
    if not 0.0 < level < 1.0 or resamples < 1:
        raise ValueError("level must lie in (0, 1) and resamples be at least 1")
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return None
    if len(positive) * len(negative) > 1_000_000:
        # Many pairs (the bootstrap takes half a second at 1000 x 1000, and grows with their number):
        # the normal approximation of Hanley and McNeil (1982), its width within 0.003 of the bootstrap's there.
        from statistics import NormalDist

        area = float(image_metrics(scores, labels)["image_auroc"])
        q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
        variance = (area * (1 - area) + (len(positive) - 1) * (q1 - area**2) + (len(negative) - 1) * (q2 - area**2)) / (len(positive) * len(negative))
        half = NormalDist().inv_cdf(0.5 + level / 2) * max(variance, 0.0) ** 0.5
        return max(0.0, area - half), min(1.0, area + half)
    # wins[i, j]: anomalous image i against normal image j (1 ranked right, 0.5 tied, 0 wrong).
    wins = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    step = max(1, 250_000 // (len(positive) + len(negative)))  # resamples per block: a few MB at most
    for start in range(0, resamples, step):
        n = min(step, resamples - start)
        # How often each image is drawn in each resample; a resample's pairs are then counts_p @ wins @ counts_n.
        counts_p = rng.multinomial(len(positive), np.full(len(positive), 1.0 / len(positive)), size=n).astype(np.float64)
        counts_n = rng.multinomial(len(negative), np.full(len(negative), 1.0 / len(negative)), size=n).astype(np.float64)
        values[start : start + n] = ((counts_p @ wins) * counts_n).sum(axis=1) / (len(positive) * len(negative))
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def f1_optimal_threshold(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Threshold t maximising F1 of ``score > t`` on labelled scores; None without both classes.

    t lies halfway between the lowest score counted anomalous and the next
    lower score, so the decisions on these scores hold with a margin.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    precision, recall, thresholds = precision_recall(scores, labels)
    k = int(np.argmax(_f1(precision, recall)))
    cut = thresholds[k]
    below = scores[scores < cut]
    return float((below.max() + cut) / 2) if below.size else float(np.nextafter(cut, -np.inf))


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)

"""Decision thresholds and score normalisation.

Two entry points, both pure numpy:

``calibrate(*, normal_scores=None, labelled_scores=None, labels=None, config=None,
policy=None, fpr=None, manual_threshold=None, margin=None) -> (threshold, normalization)``
    Image level. ``normal_scores``: scores of images known to be normal;
    ``labelled_scores`` + ``labels`` (0/1): validation images with labels.
    Policy and parameters come from ``config`` (``threshold_policy``,
    ``threshold_fpr``, ``manual_threshold``, optional ``threshold_margin``)
    unless given as keywords. ``threshold`` is on the raw score scale (an image
    is anomalous when ``score > threshold``), None when the data cannot support
    the policy. ``normalization`` is the small dict a pipeline keeps in
    ``Pipeline.normalization`` (see :func:`normalize`).

``calibrate_pixels(policy, maps, truths, fpr=0.05, manual_threshold=None, margin=0.0) -> (threshold, source)``
    The same policies from anomaly maps (H, W) and their bool ground truth
    (all False for a normal image). Used by pipelines whose image score is the
    maximum of the map: then maps and image scores share one scale, one
    threshold serves both the verdict (``score > threshold``) and the mask
    (``map > threshold``), and an image is flagged exactly when its mask is
    non-empty. ``source`` says in words where the threshold came from.
    :func:`normalization_from_maps` gives the matching normalisation.

``calibrate_region(policy, maps, truths, fpr=0.001, image_threshold=None) -> (threshold, source)``
    The second threshold of a model: which pixels are outlined as the region,
    while the first decides which images are flagged. F1-optimal on annotated
    pixels, or an accepted pixel false-positive rate on normal images (DFR III-D).

Policies (``ml.config.THRESHOLD_POLICIES``):

- ``fpr``: the accepted false-positive rate on normal images: the
  ``(1 - fpr)`` quantile of normal image scores, taken so that at most that
  fraction of the calibration images score above it.
- ``minmax``: the largest normal score plus ``margin`` times the normal score
  range (the rail paper's min/max rule).
- ``f1``: F1-optimal on labelled validation data (image labels in
  ``calibrate``; pixels in ``calibrate_pixels``). Without both classes it falls
  back to ``fpr`` on the normal scores.
- ``manual``: ``manual_threshold`` is given on the *normalised* scale (what the
  UI shows) and is mapped back to raw scores through the normal-score range.

Normalisation: ``{"min": lo, "threshold": t, "max": hi}`` maps ``lo`` (lowest
normal score) to 0, the threshold to 0.5 and ``hi`` (highest anomalous score,
or as far above ``t`` as ``lo`` is below) to 1, linearly in between, so a
normalised score above 0.5 always means "anomalous". Without a data-derived
threshold (manual) it is ``{"min": lo, "max": hi}``, linear; ``{}`` is the identity.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ml.config import REGION_POLICIES, THRESHOLD_POLICIES


def calibrate(
    *,
    normal_scores: Sequence[float] | np.ndarray | None = None,
    labelled_scores: Sequence[float] | np.ndarray | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    config: Any = None,
    policy: str | None = None,
    fpr: float | None = None,
    manual_threshold: float | None = None,
    margin: float | None = None,
) -> tuple[float | None, dict[str, float]]:
    """Image-level threshold and normalisation; see the module docstring."""
    policy = policy or getattr(config, "threshold_policy", None) or "fpr"
    fpr = _pick(fpr, config, "threshold_fpr", 0.05)
    margin = _pick(margin, config, "threshold_margin", 0.0)
    manual_threshold = manual_threshold if manual_threshold is not None else getattr(config, "manual_threshold", None)
    if policy not in THRESHOLD_POLICIES:
        raise ValueError(f"unknown threshold policy {policy!r}; known: {', '.join(THRESHOLD_POLICIES)}")

    normal = _finite(normal_scores, "normal_scores")
    scored = _finite(labelled_scores, "labelled_scores")
    marks = np.asarray([] if labels is None else labels, dtype=np.int64).reshape(-1)
    if len(marks) != len(scored):
        raise ValueError(f"{len(scored)} labelled scores but {len(marks)} labels")
    normal_all = np.concatenate([normal, scored[marks == 0]])
    anomalous = scored[marks == 1]

    if policy == "manual":
        if manual_threshold is None:
            raise ValueError("policy 'manual' needs manual_threshold")
        normalization = _range(normal_all, anomalous)
        return denormalize(float(manual_threshold), normalization), normalization
    threshold, _ = _threshold(policy, normal_all, scored, marks, fpr, margin)
    return threshold, normalization_for(threshold, normal_all, anomalous)


def calibrate_pixels(
    policy: str,
    maps: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    fpr: float = 0.05,
    manual_threshold: float | None = None,
    margin: float = 0.0,
) -> tuple[float | None, str]:
    """Threshold on anomaly-map values from maps and bool truths; see the module docstring.

    ``fpr`` and ``minmax`` use the maximum of each normal map (no true pixel);
    ``f1`` maximises pixel F1 over all maps (falls back to ``fpr`` without
    anomalous pixels); ``manual`` maps ``manual_threshold`` back from the
    normalised scale of :func:`normalization_from_maps`.
    """
    if policy not in THRESHOLD_POLICIES:
        raise ValueError(f"unknown threshold policy {policy!r}; known: {', '.join(THRESHOLD_POLICIES)}")
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    truths = [np.asarray(t, dtype=bool) for t in truths]
    if len(maps) != len(truths):
        raise ValueError(f"{len(maps)} maps but {len(truths)} truths")
    normal_maxima = np.array([float(m.max()) for m, t in zip(maps, truths) if not t.any()], np.float64)
    if policy == "manual":
        if manual_threshold is None:
            raise ValueError("policy 'manual' needs manual_threshold")
        return denormalize(float(manual_threshold), normalization_from_maps(maps, truths)), "manual"
    if policy == "f1" and any(t.any() for t in truths):
        return _pixel_f1(maps, truths)
    if not len(normal_maxima):
        return None, "no normal images to calibrate on"
    if policy == "minmax":
        return _minmax(normal_maxima, margin), f"max of {len(normal_maxima)} normal images + margin {margin:g}"
    prefix = "no anomalous pixels for F1; " if policy == "f1" else ""
    return _fpr(normal_maxima, fpr), f"{prefix}accepted FPR {fpr:g} on {len(normal_maxima)} normal images"


REGION_FPR_MAX_PIXELS = 4_000_000


def calibrate_region(
    policy: str,
    maps: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    fpr: float = 0.001,
    image_threshold: float | None = None,
) -> tuple[float | None, str]:
    """The region threshold: which pixels of a map are outlined (``map > threshold``).

    ``maps`` and bool ``truths`` as in :func:`calibrate_pixels`. Policies
    (``ml.config.REGION_POLICIES``):

    - ``f1``: F1-optimal over the pixels of the validation images (annotated
      anomalies plus normal images); without any anomalous pixel, ``fpr``.
    - ``fpr``: the accepted false-positive rate on the pixels of normal images,
      the rule of DFR section III-D ("if the FPR is 0.005, then the segmentation
      threshold should meet that just 0.5 percent of pixels in the normal images
      are incorrectly detected as anomalous"): the ``(1 - fpr)`` quantile of
      every pixel of the normal maps.
    - ``image``: ``image_threshold`` (one threshold for both, as before).
    """
    if policy not in REGION_POLICIES:
        raise ValueError(f"unknown region policy {policy!r}; known: {', '.join(REGION_POLICIES)}")
    if policy == "image":
        return image_threshold, "the image threshold"
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    truths = [np.asarray(t, dtype=bool) for t in truths]
    if len(maps) != len(truths):
        raise ValueError(f"{len(maps)} maps but {len(truths)} truths")
    if policy == "f1" and any(t.any() for t in truths):
        return _pixel_f1(maps, truths)
    normal = [m.reshape(-1) for m, t in zip(maps, truths) if not t.any()]
    if not normal:
        return None, "no normal images to calibrate on"
    prefix = "no annotated pixels for F1; " if policy == "f1" else ""
    # Many large maps: every k-th pixel of each keeps memory bounded; the quantile of
    # millions of pixels barely moves (4,000 of 4M lie above it at FPR 0.001).
    stride = max(1, -(-sum(m.size for m in normal) // REGION_FPR_MAX_PIXELS))
    pixels = np.concatenate([m[::stride] for m in normal])
    return _fpr(pixels, fpr), f"{prefix}accepted pixel FPR {fpr:g} on {len(normal)} normal images"


def normalization_for(
    threshold: float | None, normal_scores: np.ndarray, anomalous_scores: np.ndarray | None = None
) -> dict[str, float]:
    """``{"min", "threshold", "max"}`` around ``threshold`` (see the module docstring); ``{}`` without data."""
    normal = np.asarray(normal_scores, np.float64).reshape(-1)
    anomalous = np.asarray([] if anomalous_scores is None else anomalous_scores, np.float64).reshape(-1)
    if threshold is None:
        return _range(normal, anomalous)
    lo = float(normal.min()) if normal.size else threshold
    if lo >= threshold:
        lo = threshold - _spread(threshold)
    hi = float(anomalous.max()) if anomalous.size else threshold + (threshold - lo)
    if hi <= threshold:
        hi = threshold + (threshold - lo)
    return {"min": lo, "threshold": float(threshold), "max": hi}


def normalization_from_maps(
    maps: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float | None = None
) -> dict[str, float]:
    """Normalisation from map maxima: normal images (no true pixel) set ``min``, the others ``max``."""
    normal = np.array([float(np.max(m)) for m, t in zip(maps, truths) if not np.any(t)], np.float64)
    anomalous = np.array([float(np.max(m)) for m, t in zip(maps, truths) if np.any(t)], np.float64)
    return normalization_for(threshold, normal, anomalous)


def normalize(values: np.ndarray | float, normalization: dict[str, float], clip: bool = True) -> np.ndarray:
    """Raw scores or maps -> normalised values (threshold at 0.5); ``clip`` keeps them in [0, 1]."""
    v = np.asarray(values, dtype=np.float64)
    if not normalization:
        out = v
    elif "threshold" in normalization:
        lo, t, hi = normalization["min"], normalization["threshold"], normalization["max"]
        out = np.where(v <= t, 0.5 * (v - lo) / (t - lo), 0.5 + 0.5 * (v - t) / (hi - t))
    else:
        lo, hi = normalization["min"], normalization["max"]
        out = (v - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0) if clip else out


def denormalize(value: float, normalization: dict[str, float]) -> float:
    """Inverse of :func:`normalize` (unclipped) for one value."""
    if not normalization:
        return float(value)
    if "threshold" in normalization:
        lo, t, hi = normalization["min"], normalization["threshold"], normalization["max"]
        return float(lo + 2 * value * (t - lo) if value <= 0.5 else t + (2 * value - 1) * (hi - t))
    lo, hi = normalization["min"], normalization["max"]
    return float(lo + value * (hi - lo))


# --- helpers ------------------------------------------------------------------------------

def _pixel_f1(maps: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, str]:
    from ml.metrics.binned import PixelHistogram

    lo = min(float(m.min()) for m in maps)
    hi = max(float(m.max()) for m in maps)
    histogram = PixelHistogram(lo, hi, bins=4096)
    for m, t in zip(maps, truths):
        histogram.add(m, t)
    f1, threshold = histogram.f1_max()  # type: ignore[misc]
    return threshold, f"F1-optimal on {len(maps)} validation images (pixel F1 {f1:.3f})"


def _threshold(policy, normal, scored, marks, fpr, margin) -> tuple[float | None, str]:
    if policy == "f1" and len(np.unique(marks)) == 2:
        from ml.metrics.image import f1_optimal_threshold

        return f1_optimal_threshold(scored, marks), "f1"
    if not normal.size:
        return None, "no normal scores"
    if policy == "minmax":
        return _minmax(normal, margin), "minmax"
    return _fpr(normal, fpr), "fpr"


def _fpr(normal: np.ndarray, fpr: float) -> float:
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must lie in [0, 1], got {fpr}")
    # "higher": the threshold is one of the normal scores, with at most fpr of them above it.
    return float(np.quantile(normal, 1.0 - fpr, method="higher"))


def _minmax(normal: np.ndarray, margin: float) -> float:
    return float(normal.max() + margin * (normal.max() - normal.min()))


def _range(normal: np.ndarray, anomalous: np.ndarray) -> dict[str, float]:
    values = np.concatenate([normal, anomalous])
    if not values.size:
        return {}
    lo = float(normal.min()) if normal.size else float(values.min())
    hi = float(values.max())
    if hi <= lo:
        hi = lo + _spread(lo)
    return {"min": lo, "max": hi}


def _spread(value: float) -> float:
    return max(abs(value) * 0.1, 1e-6)


def _pick(value: float | None, config: Any, name: str, default: float) -> float:
    if value is not None:
        return float(value)
    configured = getattr(config, name, None)
    return float(configured) if configured is not None else default


def _finite(values: Any, name: str) -> np.ndarray:
    array = np.asarray([] if values is None else values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return array

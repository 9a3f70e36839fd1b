"""Threshold calibration of the normal-only pipelines, through ml.thresholds.

The pipelines produce anomaly maps of normal images (and, when validation
images with masks exist, of labelled ones); :func:`ml.thresholds.calibrate_pixels`
turns them into the image threshold on map values per the config's
``threshold_policy`` (for ``fpr``: the accepted false-positive rate of normal
images, an image being flagged when its map exceeds the threshold anywhere,
DFR section III-D), and :func:`ml.thresholds.normalization_from_maps` into the
display normalisation stored with the model, and
:func:`ml.thresholds.calibrate_region` into the region threshold (which pixels
are outlined) per ``region_policy``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ml import thresholds
from ml.data.io import binarize_mask


def validation_evidence(pipeline, val: Sequence | None) -> tuple[list[np.ndarray], list[np.ndarray | None]] | None:
    """Anomaly maps and masks of the ``val`` samples that can calibrate a threshold
    (those with a mask, or labelled normal), or None when there are none."""
    usable = [s for s in (val or []) if s.mask is not None or s.label == 0]
    if not usable:
        return None
    return list(pipeline.predict([s.image for s in usable]).maps), [s.mask for s in usable]


def calibrate(pipeline, maps: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]) -> None:
    """Set ``pipeline.threshold``, ``pipeline.normalization`` and ``meta['threshold_source']``.

    ``maps``: (H, W) anomaly maps; ``masks``: their ground truth at the same
    size, None for a normal image (all pixels normal).
    """
    cfg = pipeline.config
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    truths = [np.zeros(m.shape, bool) if mask is None else binarize_mask(mask) > 0 for m, mask in zip(maps, masks)]
    threshold, source = thresholds.calibrate_pixels(
        cfg.threshold_policy, maps, truths, fpr=cfg.threshold_fpr, manual_threshold=cfg.manual_threshold
    )
    pipeline.threshold = None if threshold is None else float(threshold)
    pipeline.normalization = thresholds.normalization_from_maps(maps, truths, pipeline.threshold) if maps else {}
    pipeline.meta["threshold_source"] = source
    calibrate_region(pipeline, maps, truths)


def calibrate_region(pipeline, maps: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> None:
    """Set ``pipeline.region_threshold`` and ``meta['region_threshold_source']`` per the config's
    ``region_policy`` from the same validation maps and bool truths (ml.thresholds.calibrate_region);
    without a region threshold the image threshold outlines the region."""
    cfg = pipeline.config
    region, source = thresholds.calibrate_region(
        cfg.region_policy, maps, truths, fpr=cfg.region_fpr, image_threshold=pipeline.threshold
    )
    pipeline.region_threshold = None if region is None else float(region)
    pipeline.meta["region_threshold_source"] = source if region is not None else f"the image threshold ({source})"

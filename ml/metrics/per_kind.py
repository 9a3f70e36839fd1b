"""Metrics per defect kind: how well a model finds each kind of anomaly on its own.

MVTec AD names the kind by folder (``test/<kind>/000.png``); annotated projects by
the label class of the polygons. For each kind the evaluation set is the normal
images plus the anomalous images of that kind (the MVTec AD per-category way), so
AU-PRO and image AUROC say how that kind stands out from normal; recall is the
share of that kind's images flagged at the threshold, pixel recall the share of
its anomalous pixels outlined.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Sequence

import numpy as np

NORMAL_FOLDER = "good"


def kind_from_path(name: str) -> str | None:
    """The defect folder of an MVTec AD style path (``.../test/<kind>/<file>``), None for ``good`` or other layouts."""
    parts = PurePosixPath(str(name).replace("\\", "/")).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "test" and i + 1 < len(parts) - 1:
            kind = parts[i + 1]
            return None if kind == NORMAL_FOLDER else kind
    return None


def per_kind_metrics(
    scores: Sequence[float] | np.ndarray,
    maps: Sequence[np.ndarray] | None,
    masks: Sequence[np.ndarray | None] | None,
    labels: Sequence[int | None],
    kinds: Sequence[str | None],
    threshold: float,
    region_threshold: float | None = None,
) -> dict[str, dict[str, float | None]]:
    """``{kind: {images, image_recall, image_auroc, aupro, pixel_recall}}`` for every kind of the
    anomalous images (label 1), when there are at least two kinds (one kind is the overall figure).
    Metrics the data leave undefined are None. Image recall is at ``threshold``; pixel recall at
    ``region_threshold`` when given (the pixels a model outlines), else at ``threshold``."""
    from ml.metrics.evaluate import evaluation

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels_arr = np.array([-1 if v is None else int(v) for v in labels])
    kinds_arr = np.array([k if k else "" for k in kinds], dtype=object)
    names = sorted({k for k, label in zip(kinds_arr, labels_arr) if k and label == 1})
    if len(names) < 2:
        return {}
    normal = labels_arr == 0
    out: dict[str, dict[str, float | None]] = {}
    for kind in names:
        mine = (kinds_arr == kind) & (labels_arr == 1)
        chosen = np.flatnonzero(normal | mine)
        metrics = evaluation(
            scores[chosen],
            None if maps is None else [maps[i] for i in chosen],
            None if masks is None else [masks[i] for i in chosen],
            labels=[int(labels_arr[i]) for i in chosen],
            threshold=threshold,
            curves=False,
            region_threshold=region_threshold,
        ).metrics
        out[kind] = {
            "images": int(mine.sum()),
            "image_recall": float(np.mean(scores[mine] > threshold)),
            "image_auroc": metrics.get("image_auroc"),
            "aupro": metrics.get("aupro"),
            "pixel_recall": metrics.get("pixel_recall"),
        }
    return out

"""Judging a model on labelled validation/test images: after training (its snapshot), or again on the current test split."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Callable, Sequence

import numpy as np
from django.utils import timezone

from inspection.services.inference import image_score
from projects.errors import ApplicationError

EVAL_BATCH = 8


@dataclasses.dataclass
class Outcome:
    threshold: float
    policy: str
    normalization: dict[str, float]
    metrics: dict[str, Any]
    curves: dict[str, Any]
    region_threshold: float
    region_policy: str


def evaluation_set(entries: Sequence[dict], *, source: str) -> dict[str, Any]:
    """Identity of the images metrics were computed on: ``entries`` are ``{"id", "annotation_version"}``
    (a snapshot's evaluation role). Two model versions are compared fairly only when their
    ``key`` is equal: the same images with the same annotations."""
    pairs = sorted((int(e["id"]), e.get("annotation_version")) for e in entries)
    key = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]
    return {"key": key, "count": len(pairs), "images": [i for i, _ in pairs], "source": source, "at": timezone.now().isoformat()}


def evaluate_model(
    pipeline, *, train: Sequence, evaluation: Sequence, config: dict, progress: Callable, log: Callable,
    thresholds: tuple[float, float] | None = None, kinds: Sequence[str | None] | None = None,
) -> Outcome:
    """Both thresholds (as calibrated by the pipeline's ``fit`` per the config's policies, or
    ``thresholds`` = (image, region) when given), every ``ml`` metric on the images that have
    ground truth, and the curves the UI draws.

    Image metrics at a threshold use the image threshold, pixel ones the region threshold.
    ``kinds``: the defect kind of each evaluation image (None: from MVTec folder names);
    with two kinds or more, ``metrics["per_kind"]`` holds recall and AU-PRO per kind."""
    if thresholds is None and pipeline.threshold is None:
        raise RuntimeError(f"pipeline {pipeline.name} finished fitting without a threshold")
    threshold, region_threshold = (
        (float(pipeline.threshold), float(pipeline.pixel_threshold)) if thresholds is None else map(float, thresholds)
    )
    policy = str(pipeline.meta.get("threshold_source") or config.get("threshold_policy", ""))
    region_policy = str(pipeline.meta.get("region_threshold_source") or "the image threshold")
    if not evaluation:
        log("no labelled validation/test images: the model version has no metrics")
        return Outcome(threshold, policy, dict(pipeline.normalization), {}, {}, region_threshold, region_policy)
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
    metrics, curves = _evaluate(evaluation, np.asarray(scores), maps, labels, threshold, region_threshold)
    per_kind = _per_kind(evaluation, np.asarray(scores), maps, labels, threshold, region_threshold, kinds)
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
    return Outcome(threshold, policy, dict(pipeline.normalization), metrics, curves, region_threshold, region_policy)


def _evaluate(evaluation, scores: np.ndarray, maps: list[np.ndarray], labels: np.ndarray, threshold: float, region_threshold: float):
    """Every ``ml`` metric at the model's thresholds, plus image/pixel ROC and PR points, the
    histogram of normal vs anomalous image scores (``ml.metrics`` computes all of them) and the
    range of the anomaly maps (the span of the region threshold's slider)."""
    from ml.metrics.evaluate import evaluation as ml_evaluation

    result = ml_evaluation(
        scores, maps, [s.mask for s in evaluation], labels=list(labels), threshold=threshold, region_threshold=region_threshold
    )
    metrics = {k: _plain(v) for k, v in result.metrics.items()}
    predicted = scores > threshold
    metrics.update(
        normal_images=int((labels == 0).sum()),
        image_false_positive_rate=float(predicted[labels == 0].mean()) if (labels == 0).any() else None,
        image_recall=float(predicted[labels == 1].mean()) if (labels == 1).any() else None,
    )
    curves = {k: _plain(v) for k, v in result.curves.items()}
    curves["threshold"] = threshold
    curves["region_threshold"] = region_threshold
    curves["map_range"] = {"min": float(min(m.min() for m in maps)), "max": float(max(m.max() for m in maps))}
    return metrics, curves


def _per_kind(evaluation, scores, maps, labels, threshold: float, region_threshold: float, kinds) -> dict[str, Any]:
    from ml.metrics.per_kind import kind_from_path, per_kind_metrics

    if kinds is None:
        kinds = [kind_from_path(s.name) for s in evaluation]
    return _plain(per_kind_metrics(scores, maps, [s.mask for s in evaluation], list(labels), list(kinds), threshold,
                                   region_threshold=region_threshold))

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


# --- evaluating an existing model version again -------------------------------------------

EVALUATION_TASK = "inspection.tasks.evaluate_model"


def current_evaluation_images(*, project):
    """The labelled images a training would evaluate on now (the test split, else the val split)."""
    from inspection.services.training import training_images

    return training_images(project, "unsupervised")["evaluation"]


def current_evaluation_set(*, project) -> dict[str, Any]:
    """``{key, count}`` of :func:`current_evaluation_images`: what a model version's
    ``evaluation.key`` must equal for its metrics to compare with a fresh training's."""
    rows = current_evaluation_images(project=project).values("pk", "annotation_set__version")
    found = evaluation_set([{"id": r["pk"], "annotation_version": r["annotation_set__version"]} for r in rows], source="current")
    return {"key": found["key"], "count": found["count"]}


def model_version_evaluate_start(*, model_version, user):
    """Queue a job that scores ``model_version`` on the current test split at its own
    thresholds and replaces its metrics and curves, so that versions trained on different
    splits can be compared on the same images. 400 when there is nothing to evaluate on."""
    from projects.jobs import job_create
    from projects.models import Job

    project = model_version.project
    if not current_evaluation_images(project=project).exists():
        raise ApplicationError(
            "no labelled test (or val) images to evaluate on: mark some test images normal or anomalous first",
            details={"reason": "no_evaluation_images"},
        )
    return job_create(
        kind=Job.Kind.EVALUATION, project=project, requested_by=user, task_name=EVALUATION_TASK,
        params={"model_version": model_version.pk},
    )


def evaluation_job_run(*, job_id: int):
    """Body of the ``evaluate_model`` task."""
    from django.conf import settings

    from inspection.services.limits import within_time_limit
    from projects.jobs import run_job

    return run_job(job_id, within_time_limit(_reevaluate, settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT))


def _reevaluate(ctx) -> dict[str, Any]:
    from ml.base import Sample

    from inspection.models import ModelVersion
    from inspection.services.data import image_array, mask_array
    from inspection.services.inference import load_pipeline
    from inspection.services.training import _defect_kinds
    from projects.models import Image

    job = ctx.job
    try:
        model_version = ModelVersion.objects.get(pk=job.params["model_version"], project_id=job.project_id)
    except ModelVersion.DoesNotExist:
        raise ApplicationError("the model version of this job was deleted") from None
    images = list(current_evaluation_images(project=job.project).select_related("annotation_set").order_by("pk"))
    if not images:
        raise ApplicationError("no labelled test (or val) images to evaluate on")
    ctx.log(f"model version {model_version.number} ({model_version.pipeline}) on {len(images)} labelled image(s) of the current split")
    ctx.plan({"loading images": 2, "evaluating": 6})
    ctx.progress("loading images", 0.0)
    samples, entries = [], []
    for i, image in enumerate(images):
        ctx.progress("loading images", i / len(images))
        pixels = image_array(image)
        normal = image.state == Image.State.NORMAL
        mask = np.zeros(pixels.shape[:2], np.uint8) if normal else mask_array(image)
        samples.append(Sample(image=pixels, mask=mask, label=0 if normal else 1, name=image.original_name))
        annotation_set = getattr(image, "annotation_set", None)
        entries.append({"id": image.pk, "annotation_version": annotation_set.version if annotation_set else None})
    pipeline = load_pipeline(model_version)
    # At the version's own (possibly hand-set) thresholds, not the artifact's calibrated ones.
    outcome = evaluate_model(
        pipeline, train=[], evaluation=samples, config=model_version.config, progress=ctx.progress, log=ctx.log,
        thresholds=(model_version.threshold, model_version.region_threshold),
        kinds=_defect_kinds(job.project, entries, samples),
    )
    ctx.check_cancelled()
    found = evaluation_set(entries, source="test split")
    ModelVersion.objects.filter(pk=model_version.pk).update(metrics=outcome.metrics, curves=outcome.curves, evaluation=found)
    ctx.log(f"metrics of v{model_version.number} replaced: evaluated on {found['count']} image(s) of the current split")
    return {"model_version": model_version.pk, "number": model_version.number, "images": found["count"], "metrics": outcome.metrics}

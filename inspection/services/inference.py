"""Inference: score images with a model version and store one Prediction per (image, version)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np
from django.conf import settings
from django.db import transaction

from inspection.heatmaps import encode_heatmap
from inspection.models import ModelVersion, Prediction
from inspection.services.limits import within_time_limit
from inspection.services.data import decode_rgb, image_bytes
from inspection.services.model_versions import polygons_from_mask
from projects.errors import ApplicationError
from projects.jobs import JobContext, job_create, run_job
from projects.models import Image, Job, Project
from projects.storage import save_bytes

INFERENCE_TASK = "inspection.tasks.run_inference"
BATCH_SIZE = 8  # images per prediction batch at least (more when the model's own batch size is larger)
DECODE_WORKERS = 2  # threads decoding the next batch while the current one is predicted
ENCODE_WORKERS = 4  # threads making heatmap PNGs and region polygons


def inference_job_start(
    *,
    project: Project,
    user,
    model_version: ModelVersion | None = None,
    image_ids: Iterable[int] | None = None,
    only_missing: bool = False,
    reason: str = "manual",
    broker: str = "required",
) -> Job:
    """Queue a batch inference job over ``image_ids`` (default: every image of the project).

    Without ``model_version`` the project's active model is used; with none active
    the request is refused. ``only_missing`` skips images this version already scored.
    ``broker``: see ``projects.jobs.job_create`` (requests refuse with 503 when the job
    queue is unreachable; work started inside a job uses the outbox).
    """
    if model_version is None:
        model_version = ModelVersion.objects.filter(project=project, is_active=True).first()
        if model_version is None:
            raise ApplicationError("this project has no active model; train one and activate it first")
    elif model_version.project_id != project.pk:
        raise ApplicationError("model_version: not a model version of this project", details={"key": "model_version"})
    ids = None
    if image_ids is not None:
        ids = sorted({int(i) for i in image_ids})
        if not ids:
            raise ApplicationError("image_ids: give at least one image, or leave it out for all images", details={"key": "image_ids"})
        found = set(Image.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ApplicationError(
                f"image_ids: {len(missing)} image(s) are not in this project", details={"key": "image_ids", "missing": missing[:50]}
            )
    params = {"model_version": model_version.pk, "image_ids": ids, "only_missing": only_missing, "reason": reason}
    return job_create(
        kind=Job.Kind.INFERENCE, project=project, requested_by=user, task_name=INFERENCE_TASK, params=params, broker=broker
    )


def inference_on_upload(*, project_id: int, image_ids: list[int]) -> Job | None:
    """``projects.hooks.images_uploaded`` hook: predict new images when the project has an active model."""
    if not image_ids:
        return None
    active = ModelVersion.objects.filter(project_id=project_id, is_active=True).select_related("project").first()
    if active is None:
        return None
    return inference_job_start(project=active.project, user=None, model_version=active, image_ids=image_ids, reason="upload")


def inference_job_run(*, job_id: int) -> Job | None:
    """Body of the ``run_inference`` task."""
    return run_job(job_id, within_time_limit(_infer, settings.INSPECTION_INFERENCE_SOFT_TIME_LIMIT))


def _infer(ctx: JobContext) -> dict[str, Any]:
    from ml.data.loader import parallel_map, prefetch

    params = ctx.job.params
    try:
        model_version = ModelVersion.objects.get(pk=params["model_version"], project_id=ctx.job.project_id)
    except ModelVersion.DoesNotExist:
        raise ApplicationError("the model version of this job was deleted") from None
    images = Image.objects.filter(project_id=ctx.job.project_id).order_by("pk")
    if params.get("image_ids") is not None:
        images = images.filter(pk__in=params["image_ids"])
    if params.get("only_missing"):
        images = images.exclude(predictions__model_version=model_version)
    image_ids = list(images.values_list("pk", flat=True))
    ctx.log(f"model version {model_version.number} ({model_version.pipeline}), {len(image_ids)} image(s)")
    ctx.plan({"loading model": 1, "predicting": 9})
    ctx.progress("loading model", 0.0)
    pipeline = load_pipeline(model_version)
    batch_size = max(BATCH_SIZE, int(getattr(pipeline.config, "batch_size", BATCH_SIZE)))

    def stored_batches():
        # Rows and stored bytes are read here, on the job's own database connection...
        for start in range(0, len(image_ids), batch_size):
            batch = list(Image.objects.filter(pk__in=image_ids[start : start + batch_size]).order_by("pk"))
            yield start, batch, [image_bytes(image) for image in batch]

    def decoded(item):
        # ... and decoded in a helper thread while the previous batch is predicted.
        start, batch, blobs = item
        return start, batch, parallel_map(decode_rgb, blobs, workers=DECODE_WORKERS)

    flagged = 0
    for start, batch, arrays in prefetch(stored_batches(), decoded):
        ctx.progress("predicting", start / max(len(image_ids), 1))
        flagged += predictions_store(model_version=model_version, images=batch, arrays=arrays, pipeline=pipeline, job=ctx.job)
    ctx.progress("predicting", 1.0)
    return {"model_version": model_version.pk, "predicted": len(image_ids), "flagged": flagged}


def image_score(anomaly_map: np.ndarray) -> float:
    """The score an image is flagged and ranked by: the maximum of its anomaly map.

    Pipelines calibrate one threshold on anomaly-map values (ml.thresholds.calibrate_pixels),
    so with this score an image is flagged exactly when its predicted region is not
    empty, and the browser's threshold slider over the heatmap agrees with the flag.
    (A pipeline's own image score, e.g. PatchCore's re-weighted one, need not share
    the threshold's scale.)
    """
    return float(np.nan_to_num(np.max(anomaly_map), nan=0.0))


def predictions_store(*, model_version: ModelVersion, images: list[Image], arrays: list[np.ndarray], pipeline, job: Job | None) -> int:
    """Predict ``arrays`` (the pixels of ``images``) and save one Prediction each, overwriting
    an earlier one of the same version. Returns how many were flagged.

    Heatmap PNGs and the region polygons (at the region threshold) are made on a few
    threads (numpy, zlib and OpenCV release the GIL); the rows are written with one
    upsert per batch.
    """
    from ml.data.loader import parallel_map
    from ml.formats import encode_png, mask_to_polygons

    output = pipeline.predict(arrays)
    maps = [np.asarray(m, dtype=np.float32) for m in output.maps]  # rows of an (N, H, W) array are views
    encoded = parallel_map(encode_heatmap, maps, workers=ENCODE_WORKERS)
    # Content-addressed: a re-run that yields the same map stores nothing new.
    heatmaps = [save_bytes(png) for png, _, _ in encoded]
    scores = [image_score(m) for m in maps]
    extras = [_extras(output.extras[i] if output.extras else None) for i in range(len(maps))]
    # Semantic models also say which class each pixel is: stored beside the heatmap.
    class_maps = (
        [save_bytes(encode_png(np.asarray(c, dtype=np.uint8))) for c in output.class_maps]
        if output.class_maps is not None else [""] * len(maps)
    )
    with transaction.atomic():
        # Read the threshold under the model version's row lock, the lock a threshold
        # change holds while it re-flags: predictions written here are flagged with
        # whichever threshold is current, never with one replaced mid-job.
        threshold, region_threshold = (
            ModelVersion.objects.select_for_update().values_list("threshold", "region_threshold").get(pk=model_version.pk)
        )
        # Two thresholds: the image one flags, the region one outlines (on every image, so an
        # inspector sees the region of an unflagged image too).
        is_flagged = [score > threshold for score in scores]
        regions = parallel_map(
            lambda m: polygons_from_mask(m > region_threshold, mask_to_polygons), maps, workers=ENCODE_WORKERS
        )
        rows = [
            Prediction(
                image=image,
                model_version=model_version,
                score=score,
                heatmap=heatmap,
                heatmap_min=vmin,
                heatmap_max=vmax,
                polygons=polygons,
                flagged=flagged,
                boxes=boxes,
                class_mask=class_mask,
                class_map=class_map,
                job=job,
            )
            for image, score, heatmap, (_, vmin, vmax), flagged, polygons, (boxes, class_mask), class_map
            in zip(images, scores, heatmaps, encoded, is_flagged, regions, extras, class_maps)
        ]
        Prediction.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["image", "model_version"],
            update_fields=["score", "heatmap", "heatmap_min", "heatmap_max", "polygons", "flagged", "boxes", "class_mask",
                           "class_map", "job", "updated_at"],
        )
    return sum(is_flagged)


def _extras(extra: dict | None) -> tuple[list[dict], str]:
    """JSON-safe boxes and the stored key of the class mask (the rail mask) of one image's extras."""
    from ml.formats import encode_png

    if not extra:
        return [], ""
    boxes = [
        {k: (float(v) if isinstance(v, (float, np.floating)) else int(v) if isinstance(v, (int, np.integer)) else v) for k, v in box.items()}
        for box in extra.get("boxes") or []
    ]
    mask = extra.get("rail_mask")
    key = save_bytes(encode_png(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))) if mask is not None else ""
    return boxes, key


# A worker keeps the last few loaded models: uploads arrive one by one and each
# becomes a small inference job, which should not reload the artifact every time.
_CACHE_SIZE = 2
_cache: "OrderedDict[str, Any]" = OrderedDict()
_cache_lock = threading.Lock()


def load_pipeline(model_version: ModelVersion):
    """The ``ml`` pipeline stored in a model version's artifact (cached by content key)."""
    from ml import registry

    key = model_version.artifact.name
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with model_version.artifact.open("rb") as handle:
        pipeline = registry.load_bytes(handle.read())
    with _cache_lock:
        _cache[key] = pipeline
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return pipeline

"""Model versions: activation (exactly one active per project) and threshold changes."""
from __future__ import annotations

import math
import operator
from functools import reduce
from typing import Any

import numpy as np
from django.db import models, transaction
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Q, Value, When
from django.utils import timezone

from inspection.heatmaps import decode_heatmap
from inspection.models import ModelVersion, Prediction
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.jobs import JobContext, job_create, run_job
from projects.models import Job, Project

MIN_REGION_AREA = 4.0
REDRAW_TASK = "inspection.tasks.redraw_predictions"
# Predictions redrawn per transaction: each batch holds the model version's row lock
# (the one threshold changes and inference take) for a few heatmap decodes only.
REDRAW_BATCH = 16


def model_version_activate(
    *, model_version: ModelVersion, user, predict_missing: bool = True, broker: str = "required"
) -> ModelVersion:
    """Make ``model_version`` the project's one active model (rollback = activate an older one).

    Racing activations are serialised on the project row; the partial unique
    constraint ``one_active_model_per_project`` would refuse a second active row
    even without the lock. When ``predict_missing``, an inference job then scores
    every image that has no prediction of this version yet, so the review queue fills;
    with the job queue unreachable a request is refused (503, nothing changed), a training
    that activates its own model leaves the job to the outbox (``broker``).
    """
    from inspection.services.inference import inference_job_start

    with transaction.atomic():
        Project.objects.select_for_update().get(pk=model_version.project_id)
        now = timezone.now()
        previous = list(
            ModelVersion.objects.filter(project_id=model_version.project_id, is_active=True)
            .exclude(pk=model_version.pk)
            .values_list("number", flat=True)
        )
        ModelVersion.objects.filter(project_id=model_version.project_id, is_active=True).exclude(pk=model_version.pk).update(
            is_active=False
        )
        ModelVersion.objects.filter(pk=model_version.pk).update(is_active=True, activated_at=now)
        model_version.refresh_from_db()
        audit_record(user, "model_version.activate", model_version, details={"number": model_version.number, "previous": previous})
        if predict_missing:
            inference_job_start(
                project=model_version.project, user=user, model_version=model_version, only_missing=True, broker=broker
            )
    return model_version


def model_version_set_threshold(
    *, model_version: ModelVersion, threshold: float | None = None, region_threshold: float | None = None, user
) -> ModelVersion:
    """Change the image threshold (which images are flagged) and/or the region threshold
    (which heatmap pixels are outlined): flags are re-set in one SQL UPDATE of the rows that
    change, and the predicted regions are redrawn at the new region threshold by a ``redraw``
    job after commit.

    The request does no per-prediction work (10,000 predictions cost one UPDATE). Regions
    that cannot reach the new region threshold (heatmap maximum at or below it) are emptied
    by the same UPDATE; the others are redrawn from their heatmaps by the job (the browser
    draws the region from the heatmap itself meanwhile). A change of the image threshold
    alone leaves the regions as they are and queues no job. The model version row is locked
    first, so racing changes apply one after the other, and a job redraws with the region
    threshold that is current (a superseded job stops).
    """
    threshold = _finite(threshold, "threshold")
    region_threshold = _finite(region_threshold, "region_threshold")
    if threshold is None and region_threshold is None:
        raise ApplicationError("give threshold, region_threshold or both", details={"key": "threshold"})
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("project").get(pk=model_version.pk)
        before = {"threshold": locked.threshold, "region_threshold": locked.region_threshold}
        changed: list[Q] = []
        update: dict[str, Any] = {}
        if threshold is not None:
            locked.threshold = threshold
            locked.threshold_policy = "manual"
            # Only rows that change are written: a flag that flips...
            changed += [Q(flagged=True, score__lte=threshold), Q(flagged=False, score__gt=threshold)]
            update["flagged"] = ExpressionWrapper(Q(score__gt=threshold), output_field=BooleanField())
        if region_threshold is not None:
            locked.region_threshold = region_threshold
            locked.region_threshold_policy = "manual"
            # ...or a region that can no longer exist.
            changed.append(Q(heatmap_max__lte=region_threshold) & ~Q(polygons=[]))
            update["polygons"] = Case(
                When(heatmap_max__lte=region_threshold, then=Value([], output_field=models.JSONField())),
                default=F("polygons"),
                output_field=models.JSONField(),
            )
        locked.save(update_fields=["threshold", "threshold_policy", "region_threshold", "region_threshold_policy"])
        Prediction.objects.filter(reduce(operator.or_, changed), model_version=locked).update(**update)
        after = {"threshold": locked.threshold, "region_threshold": locked.region_threshold}
        audit_record(user, "model_version.threshold", locked, details={"from": before, "to": after})
        if region_threshold is not None:
            # Outbox, not 503: the new thresholds and flags stand without a worker; the
            # regions follow once the queue delivers the job (or the sweep fails it).
            job_create(
                kind=Job.Kind.REDRAW, project=locked.project, requested_by=user, task_name=REDRAW_TASK,
                params={"model_version": locked.pk, "region_threshold": region_threshold}, broker="outbox",
            )
    return locked


def _finite(value, key: str) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{key}: expected a number", details={"key": key}) from None
    if not math.isfinite(value):
        raise ApplicationError(f"{key}: expected a finite number", details={"key": key})
    return value


def predictions_redraw_run(*, job_id: int) -> Job | None:
    """Body of the ``redraw_predictions`` task."""
    return run_job(job_id, _redraw)


def _redraw(ctx: JobContext) -> dict[str, Any]:
    """Redraw the predicted regions of a model version at the region threshold the job was
    queued for; stops as soon as that is no longer the version's region threshold."""
    from ml.formats import mask_to_polygons

    params = ctx.job.params
    version_id = params["model_version"]
    wanted = params["region_threshold"]
    current_of = ModelVersion.objects.filter(pk=version_id).values_list("region_threshold", flat=True)
    if current_of.first() != wanted:
        ctx.log("superseded by a later region threshold change (or the model version was deleted)")
        return {"model_version": version_id, "redrawn": 0, "superseded": True}
    ids = list(
        Prediction.objects.filter(model_version_id=version_id, heatmap_max__gt=wanted)
        .order_by("pk").values_list("pk", flat=True)
    )
    redrawn = 0
    for start in range(0, len(ids), REDRAW_BATCH):
        ctx.progress("redrawing predicted regions", start / max(len(ids), 1))
        with transaction.atomic():
            current = ModelVersion.objects.select_for_update().filter(pk=version_id).values_list("region_threshold", flat=True).first()
            if current != wanted:
                # Deleted, or the region threshold changed again: that change queued its own redraw.
                ctx.log("superseded by a later region threshold change" if current is not None else "model version deleted")
                return {"model_version": version_id, "redrawn": redrawn, "superseded": True}
            batch = Prediction.objects.filter(pk__in=ids[start : start + REDRAW_BATCH]).only("id", "heatmap", "heatmap_min", "heatmap_max")
            for prediction in batch:
                polygons = _region_polygons(prediction, current, mask_to_polygons)
                Prediction.objects.filter(pk=prediction.pk).update(polygons=polygons)
                redrawn += 1
    ctx.progress("redrawing predicted regions", 1.0)
    return {"model_version": version_id, "redrawn": redrawn, "superseded": False}


def _region_polygons(prediction: Prediction, threshold: float, mask_to_polygons) -> list[dict]:
    if prediction.heatmap_max <= threshold:
        return []
    with prediction.heatmap.open("rb") as handle:
        anomaly_map = decode_heatmap(handle.read(), prediction.heatmap_min, prediction.heatmap_max)
    return polygons_from_mask(anomaly_map > threshold, mask_to_polygons)


def polygons_from_mask(mask: np.ndarray, mask_to_polygons) -> list[dict]:
    """``{"outer", "holes"}`` polygons of a binary mask, as the annotations app stores them."""
    # Specks of a few pixels are noise, not regions an annotator would want to refine.
    return [region.to_polygon() for region in mask_to_polygons(np.asarray(mask, dtype=np.uint8), min_area=MIN_REGION_AREA)]

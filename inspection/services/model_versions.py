"""Model versions: activation (exactly one active per project) and threshold changes."""
from __future__ import annotations

import math

import numpy as np
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from inspection.heatmaps import decode_heatmap
from inspection.models import ModelVersion, Prediction
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.models import Project

MIN_REGION_AREA = 4.0


def model_version_activate(*, model_version: ModelVersion, user, predict_missing: bool = True) -> ModelVersion:
    """Make ``model_version`` the project's one active model (rollback = activate an older one).

    Racing activations are serialised on the project row; the partial unique
    constraint ``one_active_model_per_project`` would refuse a second active row
    even without the lock. When ``predict_missing``, an inference job then scores
    every image that has no prediction of this version yet, so the review queue fills.
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
            inference_job_start(project=model_version.project, user=user, model_version=model_version, only_missing=True)
    return model_version


def model_version_set_threshold(
    *, model_version: ModelVersion, threshold: float | None = None, region_threshold: float | None = None, user
) -> ModelVersion:
    """Change the image threshold (re-flag every prediction of this version) and/or the region
    threshold (redraw every predicted region from the stored heatmaps), in one transaction.

    The model version row is locked first, so two racing changes apply one after
    the other and the predictions always agree with the thresholds that were stored last.
    """
    from ml.formats import mask_to_polygons

    threshold = _finite(threshold, "threshold")
    region_threshold = _finite(region_threshold, "region_threshold")
    if threshold is None and region_threshold is None:
        raise ApplicationError("give threshold, region_threshold or both", details={"key": "threshold"})
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        before = {"threshold": locked.threshold, "region_threshold": locked.region_threshold}
        predictions = Prediction.objects.filter(model_version=locked)
        if threshold is not None:
            locked.threshold = threshold
            locked.threshold_policy = "manual"
            predictions.update(flagged=ExpressionWrapper(Q(score__gt=threshold), output_field=BooleanField()))
        if region_threshold is not None:
            locked.region_threshold = region_threshold
            locked.region_threshold_policy = "manual"
            for prediction in predictions.only("id", "heatmap", "heatmap_min", "heatmap_max").iterator():
                polygons = _region_polygons(prediction, region_threshold, mask_to_polygons)
                Prediction.objects.filter(pk=prediction.pk).update(polygons=polygons)
        locked.save(update_fields=["threshold", "threshold_policy", "region_threshold", "region_threshold_policy"])
        after = {"threshold": locked.threshold, "region_threshold": locked.region_threshold}
        audit_record(user, "model_version.threshold", locked, details={"from": before, "to": after})
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

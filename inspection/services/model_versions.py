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


def model_version_set_threshold(*, model_version: ModelVersion, threshold: float, user) -> ModelVersion:
    """Change the decision threshold and re-flag every prediction of this version, in one transaction.

    The model version row is locked first, so two racing changes apply one after
    the other and the predictions always agree with the threshold that was stored
    last. Predicted regions are redrawn from the stored heatmaps at the new threshold.
    """
    from ml.formats import mask_to_polygons

    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ApplicationError("threshold: expected a number", details={"key": "threshold"}) from None
    if not math.isfinite(threshold):
        raise ApplicationError("threshold: expected a finite number", details={"key": "threshold"})
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        before = locked.threshold
        locked.threshold = threshold
        locked.threshold_policy = "manual"
        locked.save(update_fields=["threshold", "threshold_policy"])
        predictions = Prediction.objects.filter(model_version=locked)
        predictions.update(flagged=ExpressionWrapper(Q(score__gt=threshold), output_field=BooleanField()))
        for prediction in predictions.only("id", "heatmap", "heatmap_min", "heatmap_max").iterator():
            polygons = _region_polygons(prediction, threshold, mask_to_polygons)
            Prediction.objects.filter(pk=prediction.pk).update(polygons=polygons)
        audit_record(user, "model_version.threshold", locked, details={"from": before, "to": threshold})
    return locked


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

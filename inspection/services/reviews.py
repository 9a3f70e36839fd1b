"""The review loop: an inspector's verdict on a prediction flows back into the data."""
from __future__ import annotations

from django.db import transaction

from inspection.models import Prediction, Review
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.models import Image


def review_create(*, prediction: Prediction, reviewer, verdict: str, comment: str = "") -> Review:
    """Record a verdict and apply its effect on the image, in one transaction.

    * ``normal``: the image becomes a normal image of the train split, so the next
      training learns from it.
    * ``anomaly``: the image is marked anomalous; when it has no polygons yet, a draft
      annotation is made from the predicted region for annotators to refine.
    * ``unsure``: recorded only.

    Afterwards the project's retraining policy is checked (it may start a training).
    """
    from annotations.services import annotation_draft_from_prediction
    from inspection.services.retraining import retrain_check

    if verdict not in Review.Verdict.values:
        raise ApplicationError(
            f"verdict: must be one of {', '.join(Review.Verdict.values)}, got {verdict!r}", details={"key": "verdict"}
        )
    comment = (comment or "").strip()
    with transaction.atomic():
        image = Image.objects.select_for_update().get(pk=prediction.image_id)
        review = Review.objects.create(prediction=prediction, reviewer=reviewer, verdict=verdict, comment=comment)
        effect: dict = {}
        if verdict == Review.Verdict.NORMAL:
            effect = {"state": Image.State.NORMAL, "split": Image.Split.TRAIN}
            Image.objects.filter(pk=image.pk).update(**effect)
        elif verdict == Review.Verdict.ANOMALY:
            effect = {"state": Image.State.ANOMALOUS}
            Image.objects.filter(pk=image.pk).update(**effect)
            annotation_set = getattr(image, "annotation_set", None)
            has_polygons = annotation_set is not None and annotation_set.annotations.exists()
            if not has_polygons and prediction.polygons:
                image.refresh_from_db()
                annotation_draft_from_prediction(image=image, polygons=prediction.polygons, actor=reviewer)
                effect["draft_annotation"] = True
        audit_record(
            reviewer,
            "prediction.review",
            prediction,
            project=image.project,
            details={"verdict": verdict, "comment": comment, "image": image.pk, "effect": effect},
        )
        project = image.project
        transaction.on_commit(lambda: retrain_check(project=project))
    return review

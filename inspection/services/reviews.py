"""The review loop: an inspector's verdict on a prediction flows back into the data."""
from __future__ import annotations

from django.db import transaction

from inspection.models import Prediction, Review
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.models import Image


def review_create(*, prediction: Prediction, reviewer, verdict: str, comment: str = "") -> Review:
    """Record a verdict and apply its effect on the image, in one transaction.

    * ``normal``: the image becomes a normal image. An unassigned image joins the
      train split so the next training learns from it; an image of the train,
      validation or test split keeps its split (moving a test image into train
      would silently shrink the test set and make model versions incomparable).
      When a person drew polygons on the image, the verdict contradicts them: the
      image is left as it is and the review is flagged (``effect.flagged``) for
      an annotator or admin to settle.
    * ``anomaly``: the image is marked anomalous; when it has no polygons yet, a draft
      annotation is made from the predicted region for annotators to refine.
    * ``unsure``: recorded only.

    The effect is stored with the review. Afterwards the project's retraining
    policy is checked (it may start a training).
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
        effect: dict = {}
        if verdict == Review.Verdict.NORMAL:
            if _has_polygons_by_a_person(image):
                effect = {"flagged": "the image has polygons drawn by a person; settle the disagreement by hand"}
            else:
                effect = {"state": Image.State.NORMAL}
                if image.split == Image.Split.UNASSIGNED:
                    effect["split"] = Image.Split.TRAIN
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
        review = Review.objects.create(
            prediction=prediction, reviewer=reviewer, verdict=verdict, comment=comment, effect=effect
        )
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


def _has_polygons_by_a_person(image: Image) -> bool:
    """Polygons drawn or imported by people (a draft made from a prediction does not count)."""
    from annotations.models import Annotation

    return Annotation.objects.filter(annotation_set__image=image).exclude(source=Annotation.Source.PREDICTION).exists()

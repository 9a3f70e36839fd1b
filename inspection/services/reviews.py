"""The review loop: an inspector's verdict on a prediction flows back into the data."""
from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from inspection.models import Prediction, Review
from projects.audit import audit_record
from projects.errors import ApplicationError, Conflict
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
        before = {"state": image.state, "split": image.split}
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
                draft = annotation_draft_from_prediction(image=image, polygons=prediction.polygons, actor=reviewer)
                effect["draft_annotation"] = True
                if draft is not None:
                    effect["draft_version"] = draft.version
        # What the verdict changed, kept with it so that an undo can put back exactly that.
        review = Review.objects.create(
            prediction=prediction, reviewer=reviewer, verdict=verdict, comment=comment, effect={**effect, "before": before}
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


UNDO_WINDOW = timedelta(minutes=30)


def review_undo(*, review: Review, user) -> Prediction:
    """Take back ``review`` (its reviewer's own, the newest verdict on the prediction, at most
    ``UNDO_WINDOW`` old): the row goes and the image gets back the state and split it had; a draft
    annotation the verdict made goes too while nobody has edited it. Returns the prediction.

    Refused (409) when another verdict came after it or the window has passed: then undoing
    would overwrite someone's later decision."""
    from annotations.models import AnnotationSet
    from annotations.services import annotations_replace

    if review.reviewer_id != getattr(user, "pk", None):
        raise ApplicationError("only the reviewer who gave a verdict can undo it", details={"reason": "not_yours"})
    with transaction.atomic():
        image = Image.objects.select_for_update().get(pk=review.prediction.image_id)
        newest = Review.objects.filter(prediction_id=review.prediction_id).order_by("-created_at", "-id").first()
        if newest is None or newest.pk != review.pk:
            raise Conflict("a later verdict was given on this prediction; only the newest can be undone")
        if timezone.now() - review.created_at > UNDO_WINDOW:
            raise Conflict(f"verdicts can be undone for {int(UNDO_WINDOW.total_seconds() // 60)} minutes; this one is older")
        effect = review.effect or {}
        draft_version = effect.get("draft_version")
        if draft_version is not None:
            annotation_set = AnnotationSet.objects.filter(image=image).first()
            if annotation_set is not None and annotation_set.is_draft and annotation_set.version == draft_version:
                annotations_replace(image=image, polygons=[], expected_version=draft_version, actor=user)
        # Only the fields the verdict changed go back (a flagged verdict changed none; a normal
        # verdict on a test or validation image left its split alone, so the undo does too).
        before = effect.get("before") or {}
        restored = {} if effect.get("flagged") else {k: before[k] for k in ("state", "split") if k in effect and k in before}
        if restored:
            Image.objects.filter(pk=image.pk).update(**restored)
        audit_record(
            user, "prediction.review_undo", review.prediction, project=image.project,
            details={"review": review.pk, "verdict": review.verdict, "image": image.pk, "restored": restored},
        )
        review.delete()
    return review.prediction


def _has_polygons_by_a_person(image: Image) -> bool:
    """Polygons drawn or imported by people (a draft made from a prediction does not count)."""
    from annotations.models import Annotation

    return Annotation.objects.filter(annotation_set__image=image).exclude(source=Annotation.Source.PREDICTION).exists()

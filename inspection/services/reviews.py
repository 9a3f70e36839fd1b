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
        image = (
            Image.objects.select_for_update(of=("self",)).select_related("project__retrain_policy").get(pk=prediction.image_id)
        )
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
            if prediction.polygons and not _has_polygons(image):
                image.refresh_from_db()
                draft = annotation_draft_from_prediction(image=image, polygons=prediction.polygons, actor=reviewer)
                effect["draft_annotation"] = True
                if draft is not None:
                    effect["draft_version"] = draft.version
        # What the verdict changed, kept with it so that an undo can put back exactly that.
        review = Review.objects.create(
            prediction=prediction, reviewer=reviewer, verdict=verdict, comment=comment, effect={**effect, "before": before}
        )
        # The newest verdict, for the queue; the reviewer's claim on the item ends with it.
        Prediction.objects.filter(pk=prediction.pk).update(verdict=verdict, claimed_by=None, claimed_until=None)
        prediction.verdict = verdict
        # The caller's prediction shows the image as the verdict left it (no re-read).
        for field in ("state", "split"):
            if field in effect:
                setattr(image, field, effect[field])
        prediction.image = image
        audit_record(
            reviewer,
            "prediction.review",
            prediction,
            project=image.project,
            details={"verdict": verdict, "comment": comment, "image": image.pk, "effect": effect},
        )
        project = image.project
        policy = getattr(project, "retrain_policy", None)  # read with the image: no query when there is none
        if policy is not None and policy.enabled:
            transaction.on_commit(lambda: retrain_check(project=project))
    return review


def review_next(*, project, user, model_version=None, flagged: bool | None = None) -> Prediction | None:
    """The next unreviewed prediction of the review queue for ``user``, held for them.

    Several reviewers work one queue without reviewing the same image twice: each gets the
    first unreviewed prediction (flagged first, by score) that nobody else holds, and holds it
    for ``REVIEW_CLAIM_SECONDS``; asking again before giving a verdict answers the same one
    (a reload loses nothing). A verdict releases it; an abandoned one is handed out again when
    its hold runs out. Concurrent callers never get the same item (the candidate row is locked
    with SKIP LOCKED, so they do not wait on each other either). None when nothing is left.
    """
    from django.conf import settings
    from django.db import connection

    from inspection.models import ModelVersion
    from inspection.selectors import QUEUE_DEFERRED

    now = timezone.now()
    until = now + timedelta(seconds=settings.REVIEW_CLAIM_SECONDS)
    predictions, versions = Prediction._meta.db_table, ModelVersion._meta.db_table
    if model_version is not None:
        version_sql, params = "%s", [model_version.pk]
    else:
        version_sql, params = f"(SELECT id FROM {versions} WHERE project_id = %s AND is_active LIMIT 1)", [project.pk]
    flagged_sql = ""
    if flagged is not None:
        flagged_sql, params = "AND flagged = %s", [*params, flagged]
    # One statement, so no transaction to open: the first unreviewed prediction in queue order
    # (flagged first, by score; the prediction_review_queue index) that is free or already the
    # caller's, locked with SKIP LOCKED so that concurrent callers take the next rows instead of
    # waiting, and held for the caller. The caller's held item is normally the first of these
    # (holds are handed out in queue order), so a reload answers it again.
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = f"""
        UPDATE {predictions} SET claimed_by_id = %s, claimed_until = %s
        WHERE id = (
            SELECT id FROM {predictions}
            WHERE model_version_id = {version_sql} AND verdict = '' {flagged_sql}
              AND (claimed_until IS NULL OR claimed_until <= %s OR claimed_by_id = %s)
            ORDER BY flagged DESC, score DESC, id LIMIT 1{lock}
        )
        RETURNING id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, until, *params, now, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    return Prediction.objects.select_related("image", "model_version").defer(*QUEUE_DEFERRED).get(pk=row[0])


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
        # The prediction's verdict goes back to the one before (or none).
        previous = Review.objects.filter(prediction_id=review.prediction_id).order_by("-created_at", "-id").first()
        prediction = review.prediction
        prediction.verdict = previous.verdict if previous else ""
        Prediction.objects.filter(pk=prediction.pk).update(verdict=prediction.verdict)
    return prediction


def _has_polygons(image: Image) -> bool:
    from annotations.models import Annotation

    return Annotation.objects.filter(annotation_set__image=image).exists()


def _has_polygons_by_a_person(image: Image) -> bool:
    """Polygons drawn or imported by people (a draft made from a prediction does not count)."""
    from annotations.models import Annotation

    return Annotation.objects.filter(annotation_set__image=image).exclude(source=Annotation.Source.PREDICTION).exists()

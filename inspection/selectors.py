"""Reads of the inspection app that need more than a ``.get``."""
from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, Func, IntegerField, Q, QuerySet

from inspection.models import ModelVersion, Prediction, Review
from projects.errors import ApplicationError
from projects.models import Image, Job, Project


def _reviewed():
    """``reviewed``: the prediction has a verdict (its ``verdict`` column, kept by the review service)."""
    return ExpressionWrapper(~Q(verdict=""), output_field=BooleanField())


def predictions_with_reviews(queryset: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """Predictions annotated with ``reviewed`` (their ``verdict`` column holds the newest one, '' when unreviewed)."""
    return queryset.select_related("image", "model_version").annotate(reviewed=_reviewed())


# A queue item shows its model version's number, pipeline and thresholds (PredictionSerializer); its
# config, metrics, curves and training history can be large and stay in the database.
QUEUE_DEFERRED = tuple(f"model_version__{name}" for name in ("config", "metrics", "curves", "evaluation", "training"))


def review_queue(
    *,
    project: Project,
    model_version: ModelVersion | None = None,
    flagged: bool | None = None,
    reviewed: bool | None = None,
    verdict: str | None = None,
    order: str = "score",
    image_ids: list[int] | None = None,
) -> QuerySet[Prediction]:
    """Predictions to review: flagged and unreviewed first, then by score, highest first;
    ``order="name"``: by image name (a video's frames are named by their timestamp: frame order).

    Defaults to the active model's predictions (an empty queue when none is active);
    ``image_ids`` narrows them to those images (the image grid's score badges).
    """
    if model_version is None:
        model_version = ModelVersion.objects.filter(project=project, is_active=True).first()
        if model_version is None:
            return Prediction.objects.none()
    # Filters and sorting use plain columns of the prediction (``verdict`` is the newest review's,
    # '' while unreviewed), so the reviewers' usual page, unreviewed by flag and score, is read from
    # the ``prediction_review_queue`` index and joined to its images and model version after the limit.
    queryset = (
        Prediction.objects.filter(model_version=model_version)
        .annotate(reviewed=_reviewed())
        .select_related("image", "model_version")
        .defer(*QUEUE_DEFERRED)
    )
    if image_ids is not None:
        queryset = queryset.filter(image_id__in=image_ids)
    if flagged is not None:
        queryset = queryset.filter(flagged=flagged)
    if reviewed is not None:
        queryset = queryset.filter(verdict="") if not reviewed else queryset.exclude(verdict="")
    if verdict is not None:
        if verdict not in Review.Verdict.values:
            raise ApplicationError(f"verdict: must be one of {', '.join(Review.Verdict.values)}", details={"key": "verdict"})
        queryset = queryset.filter(verdict=verdict)
    if order not in ("score", "name"):
        raise ApplicationError("order: must be 'score' or 'name'", details={"key": "order"})
    if order == "name":
        return queryset.order_by("image__original_name", "image_id")
    if reviewed is False:
        return queryset.order_by("-flagged", "-score", "pk")  # needs-review is then just "flagged"
    needs_review = ExpressionWrapper(Q(flagged=True) & Q(verdict=""), output_field=BooleanField())
    return queryset.annotate(needs_review=needs_review).order_by("-needs_review", "reviewed", "-score", "pk")


def image_predictions(*, image_id: int) -> QuerySet[Prediction]:
    """Every model version's prediction of one image, newest model first."""
    return predictions_with_reviews(Prediction.objects.filter(image_id=image_id)).order_by("-model_version__number")


def project_jobs(*, project: Project, kind: str | None = None, status: str | None = None) -> QuerySet[Job]:
    queryset = Job.objects.filter(project=project).order_by("-created_at", "-id")
    if kind:
        if kind not in Job.Kind.values:
            raise ApplicationError(f"kind: must be one of {', '.join(Job.Kind.values)}", details={"key": "kind"})
        queryset = queryset.filter(kind=kind)
    if status:
        if status not in Job.Status.values:
            raise ApplicationError(f"status: must be one of {', '.join(Job.Status.values)}", details={"key": "status"})
        queryset = queryset.filter(status=status)
    return queryset


class JSONArrayLength(Func):
    """Length of a JSON array column, computed by the database (SQLite and Postgres)."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="jsonb_array_length", **extra)


class JSONTrainCount(Func):
    """How many entries of a JSON array of objects have ``"role": "train"`` (a snapshot's
    training-set size), computed by the database (SQLite and Postgres)."""

    template = "(SELECT count(*) FROM json_each(%(expressions)s) WHERE json_extract(value, '$.role') = 'train')"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        template = "(SELECT count(*) FROM jsonb_array_elements(%(expressions)s) AS entry WHERE entry->>'role' = 'train')"
        return super().as_sql(compiler, connection, template=template, **extra)


def model_versions(*, project: Project) -> QuerySet[ModelVersion]:
    """The project's model versions, newest first, for the list: one query for any number of
    versions; curves and the snapshot's image list (large, not sent) stay in the database."""
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("snapshot", "created_by")
        .defer("curves", "snapshot__images")
        .annotate(
            snapshot_image_count=JSONArrayLength("snapshot__images"),
            snapshot_train_count=JSONTrainCount("snapshot__images"),
        )
        .order_by("-number")
    )


# Metrics the inspection app adds to ml's (inspection.services.evaluation._evaluate).
EXTRA_METRICS = {
    "normal_images": ("Normal images", None),
    "image_false_positive_rate": ("Image false-positive rate at threshold", "lower"),
    "image_recall": ("Image recall at threshold", "higher"),
}


def metric_catalogue() -> dict[str, dict]:
    """``{key: {"label", "better"}}`` for every metric a model version may carry; ``better`` is
    ``"higher"``, ``"lower"`` or None (counts and thresholds describe, they are not compared)."""
    from ml.metrics.evaluate import DIRECTION, METRICS

    catalogue = {key: {"label": label, "better": DIRECTION[key]} for key, label in METRICS.items()}
    catalogue.update({key: {"label": label, "better": better} for key, (label, better) in EXTRA_METRICS.items()})
    return catalogue


def active_heat(*, image) -> "np.ndarray | None":
    """The active model's anomaly map of ``image`` in [0, 1] with its region threshold at 0.5 (the box
    tool's GrabCut refinement, registered as an annotations heatmap provider), or None without one."""
    import numpy as np

    from inspection.heatmaps import decode_heatmap

    prediction = (
        Prediction.objects.filter(image=image, model_version__is_active=True).select_related("model_version").first()
    )
    if prediction is None or not prediction.heatmap:
        return None
    version = prediction.model_version
    threshold = getattr(version, "region_threshold", None)
    threshold = version.threshold if threshold is None else threshold
    with prediction.heatmap.open("rb") as fh:
        values = decode_heatmap(fh.read(), prediction.heatmap_min, prediction.heatmap_max)
    lo, hi = float(prediction.heatmap_min), float(prediction.heatmap_max)
    low = np.clip(0.5 * (values - lo) / max(threshold - lo, 1e-12), 0.0, 0.5)
    high = np.clip(0.5 + 0.5 * (values - threshold) / max(hi - threshold, 1e-12), 0.5, 1.0)
    return np.where(values <= threshold, low, high).astype(np.float32)


# How close to the threshold (on the normalised scale, threshold = 0.5) a score must be for
# the model to count as unsure about the image.
UNSURE_BAND = 0.15


def annotation_queue(*, project: Project) -> dict:
    """Images most worth labelling next, best first, each with the reason.

    Candidates: images outside the test split (test images are never suggested
    for training) that are not marked normal and carry no polygons yet, or only
    a draft made from a prediction. Order: first the images the active model is
    unsure about (normalised image score, the map's maximum, within ``UNSURE_BAND``
    of its region threshold), closest first; then the rest with a score, highest first (likely
    defects to outline); then images the model has not scored, oldest first.
    Returns ``{"model_version": ModelVersion | None, "items": [{image, score,
    normalized_score, kind, reason}, ...]}``.
    """
    from django.db.models import Exists, OuterRef

    from ml.thresholds import normalize

    version = ModelVersion.objects.filter(project=project, is_active=True).first()
    has_polygons = Image.objects.filter(pk=OuterRef("pk"), annotation_set__annotations__isnull=False)
    is_draft = Image.objects.filter(pk=OuterRef("pk"), annotation_set__is_draft=True)
    images = (
        Image.objects.filter(project=project)
        .exclude(split=Image.Split.TEST)
        .exclude(state=Image.State.NORMAL)
        .annotate(annotated=Exists(has_polygons), draft=Exists(is_draft))
        .filter(Q(annotated=False) | Q(draft=True))
        .order_by("id")
    )
    scores = {}
    if version is not None:
        scores = dict(Prediction.objects.filter(model_version=version, image__in=images).values_list("image_id", "score"))
    unsure, scored, unscored = [], [], []
    for image in images:
        draft = " A draft from the prediction waits to be refined." if image.draft else ""
        score = scores.get(image.pk)
        if score is None:
            unscored.append({"image": image, "score": None, "normalized_score": None, "kind": "unscored",
                             "reason": "Not scored by the active model yet." + draft})
            continue
        normalized = float(normalize(score, version.normalization)) if version.normalization else None
        item = {"image": image, "score": float(score), "normalized_score": normalized}
        # The image score is the map's maximum, so near the region threshold the model is unsure
        # whether any region of this image should be outlined at all.
        region = version.region_threshold if version.region_threshold is not None else version.threshold
        region_normalized = float(normalize(region, version.normalization)) if version.normalization else None
        if normalized is not None and abs(normalized - region_normalized) <= UNSURE_BAND:
            item["distance"] = abs(normalized - region_normalized)
            item.update(kind="unsure", reason=f"The model is unsure: normalised score {normalized:.2f} is close to its "
                                              f"region threshold ({region_normalized:.2f}). A label here teaches it the most." + draft)
            unsure.append(item)
        else:
            high = score > version.threshold
            item.update(kind="high" if high else "low",
                        reason=(f"High anomaly score {score:.4g} (threshold {version.threshold:.4g}): likely a defect to outline."
                                if high else f"Low anomaly score {score:.4g} (threshold {version.threshold:.4g}): probably "
                                "normal; outline anything the model missed or mark it normal.") + draft)
            scored.append(item)
    unsure.sort(key=lambda it: (it["distance"], it["image"].pk))
    for it in unsure:
        del it["distance"]
    scored.sort(key=lambda it: (-it["score"], it["image"].pk))
    return {"model_version": version, "items": unsure + scored + unscored}

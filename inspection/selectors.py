"""Reads of the inspection app that need more than a ``.get``."""
from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery

from inspection.models import ModelVersion, Prediction, Review
from projects.errors import ApplicationError
from projects.models import Job, Project


def _latest_review(field: str):
    return Subquery(Review.objects.filter(prediction=OuterRef("pk")).order_by("-created_at", "-id").values(field)[:1])


def predictions_with_reviews(queryset: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """Predictions annotated with ``reviewed`` and the newest ``verdict`` (None when unreviewed)."""
    return queryset.select_related("image", "model_version").annotate(
        reviewed=Exists(Review.objects.filter(prediction=OuterRef("pk"))),
        verdict=_latest_review("verdict"),
    )


def review_queue(
    *,
    project: Project,
    model_version: ModelVersion | None = None,
    flagged: bool | None = None,
    reviewed: bool | None = None,
    verdict: str | None = None,
    order: str = "score",
) -> QuerySet[Prediction]:
    """Predictions to review: flagged and unreviewed first, then by score, highest first;
    ``order="name"``: by image name (a video's frames are named by their timestamp: frame order).

    Defaults to the active model's predictions (an empty queue when none is active).
    """
    if model_version is None:
        model_version = ModelVersion.objects.filter(project=project, is_active=True).first()
        if model_version is None:
            return Prediction.objects.none()
    queryset = predictions_with_reviews(Prediction.objects.filter(model_version=model_version))
    if flagged is not None:
        queryset = queryset.filter(flagged=flagged)
    if reviewed is not None:
        queryset = queryset.filter(reviewed=reviewed)
    if verdict is not None:
        if verdict not in Review.Verdict.values:
            raise ApplicationError(f"verdict: must be one of {', '.join(Review.Verdict.values)}", details={"key": "verdict"})
        queryset = queryset.filter(verdict=verdict)
    if order not in ("score", "name"):
        raise ApplicationError("order: must be 'score' or 'name'", details={"key": "order"})
    if order == "name":
        return queryset.order_by("image__original_name", "image_id")
    needs_review = ExpressionWrapper(Q(flagged=True) & Q(reviewed=False), output_field=BooleanField())
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


def model_versions(*, project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).select_related("snapshot", "job").order_by("-number")

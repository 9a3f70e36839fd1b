"""Training, model versions, inference, predictions, the review queue and retraining policy."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from inspection import selectors
from inspection.api.serializers import (
    InferenceRequestSerializer,
    JobSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    RetrainPolicySerializer,
    ReviewRequestSerializer,
    ReviewSerializer,
    ThresholdSerializer,
    TrainingRequestSerializer,
)
from inspection.models import ModelVersion, Prediction, Review
from inspection.services import evaluation, inference, model_versions, retraining, reviews, training
from projects.api.http import etag_response
from projects.api.pagination import Pagination, paginate
from projects.api.query import query_bool
from projects.errors import ApplicationError
from projects.permissions import MANAGE, READ, REVIEW, get_image_for, get_owned_for, get_project_for


def _model_version_for(user, pk, *, roles=READ, action: str | None = None) -> ModelVersion:
    queryset = ModelVersion.objects.select_related("project", "snapshot", "created_by")
    return get_owned_for(user, queryset, pk, noun="model version", roles=roles, action=action)


def _prediction_for(user, pk, *, roles=READ, action: str | None = None) -> Prediction:
    queryset = selectors.predictions_with_reviews(Prediction.objects.all()).select_related("image__project")
    return get_owned_for(
        user, queryset, pk, noun="prediction", roles=roles, action=action, project=lambda p: p.image.project,
        project_field="image__project",
    )


REVIEW_RESULT = inline_serializer("ReviewResult", {"review": ReviewSerializer(), "prediction": PredictionSerializer()})
QUEUE_PARAMETERS = [
    OpenApiParameter("flagged", bool, description="only flagged (true) or unflagged (false) predictions"),
    OpenApiParameter("reviewed", bool, description="only reviewed (true) or unreviewed (false) predictions"),
    OpenApiParameter("verdict", str, enum=["anomaly", "normal", "unsure"], description="newest verdict"),
    OpenApiParameter("model_version", int, description="a model version of the project (default: the active one)"),
    OpenApiParameter("order", str, enum=["score", "name"], description="score (default) or image name (a video's frames in order)"),
    OpenApiParameter("image_ids", str, description="comma-separated image ids: only their predictions (at most 500)"),
]


def _id_list(request, name: str) -> list[int] | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ApplicationError(f"{name}: expected comma-separated image ids, got {raw[:50]!r}", details={"key": name}) from None
    if len(ids) > 500:
        raise ApplicationError(f"{name}: at most 500 ids", details={"key": name})
    return ids


class PipelineListView(APIView):
    """Pipelines with their config schemas (the training form is built from them); no torch import."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, description="[{name, supervision, description, config_schema}, ...]")
    def get(self, request):
        from ml import registry

        return Response(registry.available())


class TrainingJobView(APIView):
    pagination_class = Pagination  # also tells the schema that the list is paginated

    @extend_schema(responses={200: JobSerializer(many=True)})
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk)
        return paginate(self, selectors.project_jobs(project=project, kind="training"), JobSerializer,
                        context={"log_from": 10**9})

    @extend_schema(request=TrainingRequestSerializer, responses={201: JobSerializer})
    def post(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=MANAGE, action="train models")
        body = TrainingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = training.training_job_start(project=project, user=request.user, **body.validated_data)
        return Response(JobSerializer(job).data, status=201)


class InferenceJobView(APIView):
    @extend_schema(request=InferenceRequestSerializer, responses={201: JobSerializer})
    def post(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=MANAGE, action="run inference")
        body = InferenceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_version = None
        if body.validated_data.get("model_version"):
            try:
                model_version = ModelVersion.objects.get(pk=body.validated_data["model_version"], project=project)
            except ModelVersion.DoesNotExist:
                raise ApplicationError("model_version: not a model version of this project", details={"key": "model_version"}) from None
        job = inference.inference_job_start(
            project=project, user=request.user, model_version=model_version, image_ids=body.validated_data.get("image_ids")
        )
        return Response(JobSerializer(job).data, status=201)


class ModelVersionListView(APIView):
    """Every model version of a project with its metrics, newest first, for side-by-side comparison."""

    pagination_class = Pagination  # also tells the schema that the list is paginated

    @extend_schema(responses={200: ModelVersionSerializer(many=True)})
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk)
        context = {"current_evaluation": evaluation.current_evaluation_set(project=project)}
        return paginate(self, selectors.model_versions(project=project), ModelVersionSerializer, context=context)


class ModelVersionDetailView(APIView):
    @extend_schema(responses={200: ModelVersionDetailSerializer})
    def get(self, request, pk: int):
        return Response(ModelVersionDetailSerializer(_model_version_for(request.user, pk)).data)

    @extend_schema(request=ThresholdSerializer, responses={200: ModelVersionDetailSerializer})
    def patch(self, request, pk: int):
        model_version = _model_version_for(request.user, pk, roles=MANAGE, action="set thresholds")
        body = ThresholdSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_version = model_versions.model_version_set_threshold(model_version=model_version, user=request.user, **body.validated_data)
        return Response(ModelVersionDetailSerializer(model_version).data)


class ModelVersionEvaluateView(APIView):
    """Score a model version again on the current test split (a job), so versions trained on
    different splits are compared on the same images."""

    @extend_schema(request=None, responses={201: JobSerializer})
    def post(self, request, pk: int):
        model_version = _model_version_for(request.user, pk, roles=MANAGE, action="evaluate models")
        job = evaluation.model_version_evaluate_start(model_version=model_version, user=request.user)
        return Response(JobSerializer(job).data, status=201)


class MetricCatalogueView(APIView):
    """Every metric a model version may carry: its human name and which way is better
    (``higher``, ``lower``, or null for counts and thresholds, which are not compared)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(selectors.metric_catalogue())


class ModelVersionActivateView(APIView):
    @extend_schema(request=None, responses={200: ModelVersionDetailSerializer})
    def post(self, request, pk: int):
        model_version = _model_version_for(request.user, pk, roles=MANAGE, action="activate models")
        model_version = model_versions.model_version_activate(model_version=model_version, user=request.user)
        return Response(ModelVersionDetailSerializer(model_version).data)


class PredictionDetailView(APIView):
    @extend_schema(responses={200: PredictionSerializer})
    def get(self, request, pk: int):
        return Response(PredictionSerializer(_prediction_for(request.user, pk)).data)


class PredictionHeatmapView(APIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        prediction = _prediction_for(request.user, pk)

        def load() -> bytes:
            with prediction.heatmap.open("rb") as handle:
                return handle.read()

        response = etag_response(request, etag=prediction.heatmap.name, load=load, content_type="image/png",
                                 cache={"private": True, "max_age": 3600})
        response["X-Heatmap-Min"] = repr(prediction.heatmap_min)
        response["X-Heatmap-Max"] = repr(prediction.heatmap_max)
        return response


class PredictionClassMaskView(APIView):
    """The class mask of a prediction (the rail pipeline's rail mask), PNG 0/255; 404 when it has none."""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        prediction = _prediction_for(request.user, pk)
        if not prediction.class_mask:
            raise Http404("this prediction has no class mask")

        def load() -> bytes:
            with prediction.class_mask.open("rb") as handle:
                return handle.read()

        return etag_response(request, etag=prediction.class_mask.name, load=load, content_type="image/png",
                             cache={"private": True, "max_age": 3600})


class PredictionClassMapView(APIView):
    """The predicted class-index map of a semantic (road-scene) prediction, PNG; 404 when it has none."""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        prediction = _prediction_for(request.user, pk)
        if not prediction.class_map.name:
            raise NotFound("this prediction has no class map (the model is not a semantic segmentation model)")

        def load() -> bytes:
            with prediction.class_map.open("rb") as handle:
                return handle.read()

        return etag_response(request, etag=prediction.class_map.name, load=load, content_type="image/png",
                             cache={"private": True, "max_age": 3600})


class PredictionReviewView(APIView):
    @extend_schema(request=ReviewRequestSerializer, responses={201: REVIEW_RESULT})
    def post(self, request, pk: int):
        prediction = _prediction_for(request.user, pk, roles=REVIEW, action="review predictions")
        body = ReviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = reviews.review_create(prediction=prediction, reviewer=request.user, **body.validated_data)
        return Response({"review": ReviewSerializer(review).data, "prediction": PredictionSerializer(prediction).data}, status=201)


class ReviewDetailView(APIView):
    @extend_schema(request=None, responses={200: PredictionSerializer})
    def delete(self, request, pk: int):
        """Undo a verdict: its reviewer's own, the newest on its prediction, within 30 minutes.
        The image gets its state and split back; answers the prediction as it is now."""
        review = get_owned_for(
            request.user, Review.objects.select_related("prediction__image__project"), pk, noun="review",
            roles=REVIEW, action="undo verdicts", project=lambda r: r.prediction.image.project,
            project_field="prediction__image__project",
        )
        prediction = reviews.review_undo(review=review, user=request.user)
        return Response(PredictionSerializer(_prediction_for(request.user, prediction.pk)).data)


class ImagePredictionListView(APIView):
    @extend_schema(responses={200: PredictionSerializer(many=True)})
    def get(self, request, pk: int):
        image = get_image_for(request.user, pk)
        return Response(PredictionSerializer(selectors.image_predictions(image_id=image.pk), many=True).data)


class ReviewQueueView(APIView):
    """Flagged, unreviewed predictions first, by score; filters ``flagged``, ``reviewed``,
    ``verdict`` and ``model_version`` (default: the active model)."""

    pagination_class = Pagination  # also tells the schema that the list is paginated

    @extend_schema(parameters=QUEUE_PARAMETERS, responses={200: PredictionSerializer(many=True)})
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk)
        model_version = _queue_model_version(request, project)
        queue = selectors.review_queue(
            project=project,
            model_version=model_version,
            flagged=query_bool(request, "flagged"),
            reviewed=query_bool(request, "reviewed"),
            verdict=request.query_params.get("verdict") or None,
            order=request.query_params.get("order") or "score",
            image_ids=_id_list(request, "image_ids"),
        )
        return paginate(self, queue, PredictionSerializer)


NEXT_RESULT = inline_serializer(
    "ReviewNextResult",
    {"prediction": PredictionSerializer(allow_null=True), "claimed_until": serializers.DateTimeField(allow_null=True)},
)


class ReviewQueueNextView(APIView):
    """The next unreviewed prediction for the caller, held for them (``REVIEW_CLAIM_SECONDS``) so
    that several reviewers on one queue never get the same item; a verdict releases it. Filters
    ``flagged`` and ``model_version`` as the queue; ``prediction`` is null when nothing is left."""

    @extend_schema(request=None, parameters=[p for p in QUEUE_PARAMETERS if p.name in ("flagged", "model_version")],
                   responses={200: NEXT_RESULT})
    def post(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=REVIEW, action="review predictions")
        model_version = _queue_model_version(request, project)
        prediction = reviews.review_next(
            project=project, user=request.user, model_version=model_version, flagged=query_bool(request, "flagged")
        )
        if prediction is None:
            return Response({"prediction": None, "claimed_until": None})
        return Response({
            "prediction": PredictionSerializer(prediction).data,
            "claimed_until": serializers.DateTimeField().to_representation(prediction.claimed_until),
        })


def _queue_model_version(request, project) -> ModelVersion | None:
    """``?model_version=`` as a model version of ``project`` (None: the queue uses the active one)."""
    if not request.query_params.get("model_version"):
        return None
    try:
        return ModelVersion.objects.get(pk=int(request.query_params["model_version"]), project=project)
    except (ModelVersion.DoesNotExist, ValueError):
        raise ApplicationError("model_version: not a model version of this project", details={"key": "model_version"}) from None


class RetrainPolicyView(APIView):
    @extend_schema(responses={200: RetrainPolicySerializer})
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=MANAGE, action="see the retraining policy")
        policy = retraining.retrain_policy_get(project=project)
        data = RetrainPolicySerializer(policy).data
        data["new_labels_since_last_training"] = retraining.labels_since_last_training(project=project)
        return Response(data)

    @extend_schema(request=RetrainPolicySerializer, responses={200: RetrainPolicySerializer})
    def put(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=MANAGE, action="change the retraining policy")
        body = RetrainPolicySerializer(data=request.data, partial=request.method == "PATCH")
        body.is_valid(raise_exception=True)
        policy = retraining.retrain_policy_update(project=project, user=request.user, data=dict(body.validated_data))
        data = RetrainPolicySerializer(policy).data
        data["new_labels_since_last_training"] = retraining.labels_since_last_training(project=project)
        return Response(data)

    patch = put

"""Input and output shapes of the inspection API. No business rules here."""
from __future__ import annotations

from rest_framework import serializers

from inspection.models import ModelVersion, Prediction, Review, RetrainPolicy
from projects.api.files import signed_file_url
from projects.api.parsers import INT64_MAX
from projects.models import Job


class JobSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    model_version = serializers.SerializerMethodField()
    is_terminal = serializers.BooleanField(read_only=True)
    log_count = serializers.SerializerMethodField()
    log = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "project", "kind", "status", "is_terminal", "stage", "progress", "eta_seconds", "log", "log_count",
            "metrics_history", "params", "result", "error", "traceback", "cancel_requested", "attempts", "heartbeat_at",
            "requested_by", "created_at", "started_at", "finished_at", "model_version",
        ]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        if not self.context.get("show_traceback", True):
            data["traceback"] = ""  # server internals: admins only
        return data

    def get_model_version(self, job: Job) -> int | None:
        kinds = (Job.Kind.TRAINING, Job.Kind.INFERENCE, Job.Kind.EVALUATION)
        return (job.result or {}).get("model_version") if job.kind in kinds else None

    def get_log_count(self, job: Job) -> int:
        return len(job.log or [])

    def get_log(self, job: Job) -> list[str]:
        # Pollers pass ?log_from=<log_count they have> and receive only the new lines.
        start = self.context.get("log_from", 0)
        return list((job.log or [])[start:])


class TrainingRequestSerializer(serializers.Serializer):
    pipeline = serializers.CharField()
    preset = serializers.CharField(required=False, allow_null=True, default=None, max_length=50)
    config = serializers.JSONField(required=False, default=dict)
    activate = serializers.BooleanField(required=False, default=False)
    vae_model_version = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="A vae model version of the project: the residual input of a unet with input 'image+residual'.",
    )


class InferenceRequestSerializer(serializers.Serializer):
    # Bounded so that one request cannot build an unbounded IN (...) query.
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=INT64_MAX), required=False, allow_null=True,
        max_length=10_000,
    )
    model_version = serializers.IntegerField(min_value=1, max_value=INT64_MAX, required=False, allow_null=True)


class ThresholdSerializer(serializers.Serializer):
    threshold = serializers.FloatField(required=False, help_text="Image threshold: a score above it flags the image.")
    region_threshold = serializers.FloatField(required=False, help_text="Region threshold: map values above it are outlined.")


class ReviewRequestSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Review.Verdict.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class RetrainPolicySerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RetrainPolicy
        fields = ["enabled", "min_new_labels", "cooldown_minutes", "auto_activate", "last_triggered_at", "updated_by", "updated_at"]
        read_only_fields = ["last_triggered_at", "updated_by", "updated_at"]
        extra_kwargs = {"min_new_labels": {"min_value": 1}}


class ModelVersionSerializer(serializers.ModelSerializer):
    """``evaluation``: the image set of the metrics ({key, count, source, at}) and, with the
    ``current_evaluation`` context the list view passes, ``is_current``: whether it is the set a
    training would evaluate on now. ``snapshot.train_images``: how many images it was trained on."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    snapshot = serializers.SerializerMethodField()
    evaluation = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "project", "number", "pipeline", "preset", "config", "threshold", "threshold_policy", "region_threshold",
            "region_threshold_policy", "normalization", "metrics", "evaluation", "snapshot", "job", "is_active",
            "created_by", "created_at", "activated_at",
        ]
        read_only_fields = fields

    def get_snapshot(self, model_version: ModelVersion) -> dict | None:
        snapshot = model_version.snapshot
        if snapshot is None:
            return None
        # The list selector counts in SQL (the snapshot's image list is not loaded there).
        count = getattr(model_version, "snapshot_image_count", None)
        train = getattr(model_version, "snapshot_train_count", None)
        if count is None:
            count = len(snapshot.images)
            train = sum(1 for entry in snapshot.images if entry.get("role") == "train")
        return {
            "id": snapshot.pk, "created_at": snapshot.created_at, "summary": snapshot.summary,
            "images": count, "train_images": train,
        }

    def get_evaluation(self, model_version: ModelVersion) -> dict:
        found = {k: v for k, v in (model_version.evaluation or {}).items() if k != "images"}
        current = self.context.get("current_evaluation")
        if current is not None:
            found["is_current"] = found.get("key") == current["key"]
        return found


class ModelVersionDetailSerializer(ModelVersionSerializer):
    class Meta(ModelVersionSerializer.Meta):
        fields = ModelVersionSerializer.Meta.fields + ["curves", "training"]
        read_only_fields = fields


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "prediction", "reviewer", "verdict", "comment", "effect", "created_at"]
        read_only_fields = fields


def image_info(image) -> dict:
    """The image of a prediction; ``file_url`` is a signed link (projects.api.files) the review
    page loads without a session lookup; ``/api/images/{id}/file`` serves the same bytes."""
    return {
        "id": image.pk,
        "original_name": image.original_name,
        "width": image.width,
        "height": image.height,
        "split": image.split,
        "state": image.state,
        "file_url": signed_file_url(image.file.name, content_type=image.content_type, filename=image.original_name)
        if image.file.name else f"/api/images/{image.pk}/file",
        "thumbnail_url": f"/api/images/{image.pk}/thumbnail",
    }


_DATETIME = serializers.DateTimeField()  # DRF's format for the hand-built prediction body


class PredictionSerializer(serializers.ModelSerializer):
    """A prediction with what the review page needs to draw it: the image, the heatmap
    and the value range it maps to, and the model version's threshold."""

    image = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    threshold = serializers.FloatField(source="model_version.threshold", read_only=True)
    region_threshold = serializers.FloatField(source="model_version.region_threshold", read_only=True)
    heatmap_url = serializers.SerializerMethodField()
    heatmap_range = serializers.SerializerMethodField()
    class_mask_url = serializers.SerializerMethodField()
    class_map_url = serializers.SerializerMethodField()
    reviewed = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id", "image", "model_version", "score", "threshold", "region_threshold", "flagged", "heatmap_url",
            "heatmap_range", "class_map_url", "polygons", "boxes", "class_mask_url", "reviewed", "verdict", "job",
            "created_at", "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, prediction: Prediction) -> dict:
        """The same body as the declared fields give, built directly: the review queue sends 50 of
        these per page under load, and DRF's field-by-field walk was most of that request's time.
        ``test_prediction_fast_representation_matches_the_fields`` keeps the two equal."""
        mv = prediction.model_version
        return {
            "id": prediction.pk,
            "image": image_info(prediction.image),
            "model_version": self.get_model_version(prediction),
            "score": float(prediction.score),
            "threshold": float(mv.threshold),
            "region_threshold": float(mv.region_threshold),
            "flagged": prediction.flagged,
            "heatmap_url": self.get_heatmap_url(prediction),
            "heatmap_range": self.get_heatmap_range(prediction),
            "class_map_url": self.get_class_map_url(prediction),
            "polygons": prediction.polygons,
            "boxes": prediction.boxes,
            "class_mask_url": self.get_class_mask_url(prediction),
            "reviewed": self.get_reviewed(prediction),
            "verdict": self.get_verdict(prediction),
            "job": prediction.job_id,
            "created_at": _DATETIME.to_representation(prediction.created_at),
            "updated_at": _DATETIME.to_representation(prediction.updated_at),
        }

    def get_image(self, prediction: Prediction) -> dict:
        return image_info(prediction.image)

    def get_model_version(self, prediction: Prediction) -> dict:
        mv = prediction.model_version
        return {"id": mv.pk, "number": mv.number, "pipeline": mv.pipeline, "is_active": mv.is_active, "normalization": mv.normalization}

    def get_heatmap_url(self, prediction: Prediction) -> str:
        """A signed link to the heatmap PNG (``/api/predictions/{id}/heatmap.png`` serves it too)."""
        if not prediction.heatmap.name:  # rows made by hand without a heatmap: the endpoint says 404
            return f"/api/predictions/{prediction.pk}/heatmap.png"
        return signed_file_url(prediction.heatmap.name, content_type="image/png")

    def get_class_map_url(self, prediction: Prediction) -> str | None:
        """The predicted class map of a semantic model (pixel values are label class indices); None otherwise."""
        return f"/api/predictions/{prediction.pk}/class-map.png" if prediction.class_map.name else None

    def get_heatmap_range(self, prediction: Prediction) -> dict:
        return {"min": prediction.heatmap_min, "max": prediction.heatmap_max}

    def get_class_mask_url(self, prediction: Prediction) -> str | None:
        """The rail mask the rail pipeline found (None for pipelines that find no class mask)."""
        return f"/api/predictions/{prediction.pk}/class_mask.png" if prediction.class_mask else None

    def get_reviewed(self, prediction: Prediction) -> bool:
        return bool(prediction.verdict)

    def get_verdict(self, prediction: Prediction) -> str | None:
        """The newest verdict (the review service keeps it on the prediction), None while unreviewed."""
        return prediction.verdict or None

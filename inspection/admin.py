"""Django admin views of the inspection rows: read-mostly, for operators looking into a project."""
from django.contrib import admin

from inspection.models import DatasetSnapshot, ModelVersion, Prediction, RetrainPolicy, Review


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "number", "pipeline", "threshold", "is_active", "created_at")
    list_filter = ("pipeline", "is_active")
    search_fields = ("project__name", "project__slug")
    # Activation and thresholds go through the API's services (locks, re-flagging, audit).
    readonly_fields = ("project", "number", "pipeline", "config", "artifact", "threshold", "threshold_policy", "normalization",
                       "metrics", "curves", "snapshot", "job", "is_active", "created_by", "created_at", "activated_at")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "image", "model_version", "score", "flagged", "updated_at")
    list_filter = ("flagged",)
    raw_id_fields = ("image", "model_version", "job")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "prediction", "reviewer", "verdict", "created_at")
    list_filter = ("verdict",)
    raw_id_fields = ("prediction",)


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "job", "created_at")
    raw_id_fields = ("job",)


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(admin.ModelAdmin):
    list_display = ("project", "enabled", "min_new_labels", "cooldown_minutes", "auto_activate", "last_triggered_at")

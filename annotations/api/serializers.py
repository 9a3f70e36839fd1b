"""Input parsing and output shapes of the annotations API (no business rules here)."""
from __future__ import annotations

from rest_framework import serializers

from annotations.importers import IMPORT_FORMATS
from annotations.exporters import EXPORT_FORMATS
from annotations.models import Annotation, LabelClass
from projects.api.parsers import INT64_MAX
from projects.models import Job


class LabelClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "name", "color"]


class LabelClassWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    color = serializers.CharField(max_length=7, required=False)


class AnnotationSerializer(serializers.ModelSerializer):
    outer = serializers.SerializerMethodField()
    holes = serializers.SerializerMethodField()
    label_class = LabelClassSerializer(read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "outer", "holes", "label_class", "source", "author", "version", "created_at"]

    def get_outer(self, obj) -> list[list[float]]:
        return obj.polygon["outer"]

    def get_holes(self, obj) -> list[list[list[float]]]:
        return obj.polygon.get("holes") or []


class ImageAnnotationsSerializer(serializers.Serializer):
    image = serializers.IntegerField(source="image.pk")
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    state = serializers.CharField(source="image.state")
    version = serializers.IntegerField()
    is_draft = serializers.BooleanField()
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    polygons = AnnotationSerializer(source="annotations", many=True)


class AnnotationsPutSerializer(serializers.Serializer):
    """``{"version": <the version you read>, "polygons": [{"outer": [[x, y], ...], "holes": [...],
    "label_class": <id>}, ...]}``; the geometry is checked by the service."""

    version = serializers.IntegerField(min_value=0, max_value=INT64_MAX)
    polygons = serializers.ListField(child=serializers.JSONField(), allow_empty=True)


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="a zip archive of the dataset")
    format = serializers.ChoiceField(choices=IMPORT_FORMATS)


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)


class DataJobSerializer(serializers.ModelSerializer):
    """An import or export job; its live state is also at /api/jobs/{id}/ (with cancel and events)."""

    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    format = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "format", "status", "stage", "progress", "eta_seconds", "result", "error",
            "requested_by", "created_at", "started_at", "finished_at", "download_url",
        ]

    def get_format(self, obj) -> str:
        return obj.params.get("format", "")

    def get_download_url(self, obj) -> str | None:
        if obj.kind != Job.Kind.EXPORT or obj.status != Job.Status.SUCCEEDED or not obj.output_file:
            return None
        return f"/api/projects/{obj.project_id}/exports/{obj.pk}/download"

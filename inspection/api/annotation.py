"""What annotators and admins take from the inspection floor: the queue of images most worth
labelling next, and a model version's artifact to use outside the app."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from inspection import selectors
from inspection.models import ModelVersion
from projects.permissions import ANNOTATE, MANAGE, get_owned_for, get_project_for

QUEUE_LIMIT = 200


class AnnotationQueueView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="{count, model_version, results: [{image, score, normalized_score, kind, reason}]}, best first")
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk, roles=ANNOTATE, action="annotate images")
        queue = selectors.annotation_queue(project=project)
        version = queue["model_version"]
        items = queue["items"]
        return Response({
            "count": len(items),
            "model_version": None if version is None else {
                "id": version.pk, "number": version.number, "pipeline": version.pipeline, "threshold": version.threshold,
            },
            "results": [
                {
                    "image": {
                        "id": it["image"].pk, "original_name": it["image"].original_name, "split": it["image"].split,
                        "state": it["image"].state, "width": it["image"].width, "height": it["image"].height,
                    },
                    "score": it["score"],
                    "normalized_score": it["normalized_score"],
                    "kind": it["kind"],
                    "reason": it["reason"],
                }
                for it in items[:QUEUE_LIMIT]
            ],
        })


class ModelVersionArtifactView(APIView):
    """The model file itself (``torch.load(weights_only=True)``; ``python -m ml predict|export --model`` take it)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        queryset = ModelVersion.objects.select_related("project")
        version = get_owned_for(request.user, queryset, pk, noun="model version", roles=MANAGE, action="download models")
        with version.artifact.open("rb") as handle:
            data = handle.read()
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = (
            f'attachment; filename="{version.project.slug}-v{version.number}-{version.pipeline}.pt"'
        )
        response["Content-Length"] = str(len(data))
        return response

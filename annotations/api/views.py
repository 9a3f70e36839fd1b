"""Thin API views: parse input, check the role, call one service or selector, serialize.

Roles (projects.permissions): every member reads annotations, masks and label
classes; annotators and admins save annotations and run exports; admins edit
label classes and run imports; outsiders get 404 for everything.
"""
from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotations import assist, selectors, services
from annotations.api.serializers import (
    AnnotationsPutSerializer,
    DataJobSerializer,
    ExportRequestSerializer,
    ImageAnnotationsSerializer,
    ImportRequestSerializer,
    LabelClassSerializer,
    LabelClassWriteSerializer,
)
from annotations.exporters import export_job_start
from annotations.importers import import_job_start
from annotations.models import LabelClass
from projects.api.http import content_disposition, etag_response
from projects.api.parsers import BoundedJSONParser
from projects.errors import ApplicationError, Conflict, NotFound
from projects.models import Job
from projects.permissions import ANNOTATE, MANAGE, READ, get_image_for, get_project_for


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FormatIsADatasetFormat(DefaultContentNegotiation):
    """In ``/exports/?format=coco`` the ``format`` parameter names the dataset format; DRF would
    otherwise read it as the response renderer (and answer 404 for an unknown renderer)."""

    settings = _NoFormatOverride()


# Masks change with every save: always revalidate, the ETag makes that cheap.
REVALIDATE = {"private": True, "no_cache": True}


class ImageAnnotationsView(GenericAPIView):
    serializer_class = ImageAnnotationsSerializer

    def get(self, request, image_id: int):
        image = get_image_for(request.user, image_id, roles=READ)
        return Response(ImageAnnotationsSerializer(selectors.image_annotations_get(image=image)).data)

    @extend_schema(request=AnnotationsPutSerializer, responses=ImageAnnotationsSerializer)
    def put(self, request, image_id: int):
        image = get_image_for(request.user, image_id, roles=ANNOTATE, action="edit annotations")
        body = AnnotationsPutSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.annotations_replace(
            image=image, polygons=body.validated_data["polygons"],
            expected_version=body.validated_data["version"], actor=request.user,
        )
        return Response(ImageAnnotationsSerializer(selectors.image_annotations_get(image=image)).data)


class ImageMaskView(GenericAPIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, image_id: int):
        image = get_image_for(request.user, image_id, roles=READ)
        data, etag = selectors.image_mask_png(image=image)
        return etag_response(request, etag=etag, load=lambda: data, content_type="image/png", cache=REVALIDATE)


class LabelClassListView(GenericAPIView):
    serializer_class = LabelClassSerializer
    pagination_class = None

    @extend_schema(operation_id="projects_label_classes_list", responses=LabelClassSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=READ)
        return Response(LabelClassSerializer(selectors.label_class_list(project=project), many=True).data)

    @extend_schema(request=LabelClassWriteSerializer, responses={201: LabelClassSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="create label classes")
        body = LabelClassWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        label_class = services.label_class_create(
            project=project, name=body.validated_data.get("name", ""), color=body.validated_data.get("color"),
            actor=request.user,
        )
        return Response(LabelClassSerializer(label_class).data, status=status.HTTP_201_CREATED)


class LabelClassDetailView(GenericAPIView):
    serializer_class = LabelClassSerializer

    def _load(self, request, project_id: int, label_class_id: int, roles, action=None) -> LabelClass:
        project = get_project_for(request.user, project_id, roles=roles, action=action)
        label_class = LabelClass.objects.filter(project=project, pk=label_class_id).first()
        if label_class is None:
            raise NotFound("label class not found")
        return label_class

    def get(self, request, project_id: int, label_class_id: int):
        return Response(LabelClassSerializer(self._load(request, project_id, label_class_id, READ)).data)

    @extend_schema(request=LabelClassWriteSerializer, responses=LabelClassSerializer)
    def patch(self, request, project_id: int, label_class_id: int):
        label_class = self._load(request, project_id, label_class_id, MANAGE, "edit label classes")
        body = LabelClassWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        label_class = services.label_class_update(label_class=label_class, actor=request.user, **body.validated_data)
        return Response(LabelClassSerializer(label_class).data)

    def delete(self, request, project_id: int, label_class_id: int):
        label_class = self._load(request, project_id, label_class_id, MANAGE, "delete label classes")
        services.label_class_delete(label_class=label_class, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImportListView(GenericAPIView):
    """GET: the project's import jobs, newest first. POST (multipart ``file`` + ``format``): queue an import."""

    serializer_class = DataJobSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="see imports")
        page = self.paginate_queryset(selectors.data_jobs_list(project=project, kind=Job.Kind.IMPORT))
        return self.get_paginated_response(DataJobSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": ImportRequestSerializer}, responses={202: DataJobSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="import data")
        body = ImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        job = import_job_start(
            project=project, archive_name=upload.name or "archive.zip", archive=upload.read(),
            fmt=body.validated_data["format"], actor=request.user,
        )
        return Response(DataJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportListView(GenericAPIView):
    """GET: the project's export jobs, newest first (``?format=`` filters). POST ``{"format": "coco"|"mvtec"}``
    (or ``?format=``): queue an export whose zip is downloaded from ``download_url`` when it succeeded."""

    serializer_class = DataJobSerializer
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    content_negotiation_class = FormatIsADatasetFormat

    @extend_schema(parameters=[OpenApiParameter("format", str, required=False)])
    def get(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=ANNOTATE, action="export data")
        jobs = selectors.data_jobs_list(project=project, kind=Job.Kind.EXPORT)
        fmt = request.query_params.get("format")
        if fmt:
            jobs = jobs.filter(params__format=fmt)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(DataJobSerializer(page, many=True).data)

    @extend_schema(request=ExportRequestSerializer, responses={202: DataJobSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request.user, project_id, roles=ANNOTATE, action="export data")
        data = {"format": request.data.get("format") or request.query_params.get("format")}
        body = ExportRequestSerializer(data=data)
        body.is_valid(raise_exception=True)
        job = export_job_start(project=project, fmt=body.validated_data["format"], actor=request.user)
        return Response(DataJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDownloadView(GenericAPIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, project_id: int, job_id: int):
        project = get_project_for(request.user, project_id, roles=ANNOTATE, action="export data")
        job = Job.objects.filter(project=project, kind=Job.Kind.EXPORT, pk=job_id).first()
        if job is None:
            raise NotFound("export not found")
        if job.status != Job.Status.SUCCEEDED or not job.output_file:
            raise Conflict(f"export {job.pk} is {job.status}; its archive is ready once it succeeded",
                           details={"status": job.status})
        key = job.output_file.name.rsplit("/", 1)[-1]
        if f'"{key}"' in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            not_modified = HttpResponse(status=304)
            not_modified["ETag"] = f'"{key}"'
            patch_cache_control(not_modified, **REVALIDATE)
            return not_modified
        try:
            archive = job.output_file.open("rb")
        except FileNotFoundError:
            raise ApplicationError("the export archive is gone; export again", status=410) from None
        # Streamed piece by piece (a large archive is stored in chunks): never whole in memory.
        response = FileResponse(archive, content_type="application/zip")
        response["Content-Length"] = str(job.output_file.size)
        response["ETag"] = f'"{key}"'
        patch_cache_control(response, **REVALIDATE)
        response["Content-Disposition"] = content_disposition(
            f'{project.slug}-{job.params.get("format", "export")}-{job.pk}.zip', disposition="attachment"
        )
        return response


class _AssistView(GenericAPIView):
    """Labelling aids (annotations.assist): annotators and admins; the answer is the polygons after the
    action, nothing is saved (the editor saves them through the versioned annotations endpoint)."""

    def _image(self, request, image_id: int):
        return get_image_for(request.user, image_id, roles=ANNOTATE, action="edit annotations")


class AnnotationPaintView(_AssistView):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, image_id: int):
        """``{polygons, label_class, strokes: [{points: [[x, y], ...], radius, erase}]}`` -> ``{polygons}``."""
        image = self._image(request, image_id)
        data = request.data if isinstance(request.data, dict) else {}
        polygons = assist.annotation_paint(image=image, polygons=data.get("polygons", []), strokes=data.get("strokes"),
                                           label_class=data.get("label_class"))
        return Response({"polygons": polygons})


class AnnotationBoxView(_AssistView):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, image_id: int):
        """``{polygons, label_class, box: [x0, y0, x1, y1]}`` -> ``{polygons, used_heatmap}`` (GrabCut)."""
        image = self._image(request, image_id)
        data = request.data if isinstance(request.data, dict) else {}
        polygons, used_heatmap = assist.annotation_box(image=image, polygons=data.get("polygons", []), box=data.get("box"),
                                                       label_class=data.get("label_class"))
        return Response({"polygons": polygons, "used_heatmap": used_heatmap})


class AnnotationSuperpixelView(_AssistView):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, image_id: int):
        """``{polygons, label_class, point: [x, y], erase}`` -> ``{polygons}`` (the SLIC superpixel under the point)."""
        image = self._image(request, image_id)
        data = request.data if isinstance(request.data, dict) else {}
        polygons = assist.annotation_superpixel(image=image, polygons=data.get("polygons", []), point=data.get("point"),
                                                label_class=data.get("label_class"), erase=bool(data.get("erase", False)))
        return Response({"polygons": polygons})

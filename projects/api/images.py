"""Images: list/upload per project, metadata, original bytes and thumbnails."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from projects import selectors, services
from projects.api.http import etag_response
from projects.api.parsers import BoundedJSONParser
from projects.api.pagination import Pagination, paginate
from projects.api.query import query_bool
from projects.api.serializers import ImageListQuery, ImageOut, ImageUpdateIn, UploadIn, UploadOut
from projects.errors import ApplicationError, PayloadTooLarge
from projects.permissions import ANNOTATE, MANAGE, get_image_for, get_project_for, require_role

# Image bytes never change for an image id, so clients may keep them; "private"
# because they are only for signed-in members.
IMMUTABLE = {"private": True, "max_age": 7 * 24 * 3600, "immutable": True}


class ProjectImageListView(APIView):
    pagination_class = Pagination  # also tells the schema that the list is paginated
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    @extend_schema(parameters=[ImageListQuery], responses={200: ImageOut(many=True)})
    def get(self, request, project_id):
        project = get_project_for(request.user, project_id)
        query = ImageListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        filters["annotated"] = query_bool(request, "annotated")
        return paginate(self, selectors.image_list(project=project, **filters), ImageOut)

    @extend_schema(request={"multipart/form-data": UploadIn}, responses={201: UploadOut, 200: UploadOut, 202: UploadOut})
    def post(self, request, project_id):
        """Upload images or zip archives of images (admins). All or nothing: with any
        bad file nothing is saved and ``details.bad_files`` lists each one. A large upload
        (UPLOAD_JOB_MIN_FILES files or UPLOAD_JOB_MIN_BYTES) answers 202 with an import
        job that does the same in a worker."""
        project = get_project_for(request.user, project_id, roles=MANAGE, action="upload images")
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.MAX_UPLOAD_BYTES:
            # Refuse before reading the body.
            raise PayloadTooLarge(f"upload is {declared} bytes, over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}")
        try:
            uploads = request.FILES.getlist("files")
            fields = {key: request.data.get(key) for key in ("split", "state") if request.data.get(key)}
        except TooManyFilesSent:
            raise ApplicationError(
                f"too many files in one request (at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}); zip them"
            ) from None
        except RequestDataTooBig:
            raise PayloadTooLarge(f"upload over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}") from None
        if not uploads:
            raise ApplicationError("files: send one or more files in the multipart field 'files'")
        parsed = ImageUpdateIn(data=fields)
        parsed.is_valid(raise_exception=True)
        # The files as Django spooled them (on disk past UPLOAD_MEMORY_BYTES): read one at a time.
        files = [(upload.name, upload) for upload in uploads]
        if services.upload_is_large(files=files):
            job = services.image_upload_job_start(project=project, files=files, uploaded_by=request.user, **parsed.validated_data)
            body = {"created": [], "duplicates": [], "job": {"id": job.pk, "kind": job.kind, "status": job.status,
                                                             "url": f"/api/jobs/{job.pk}/"}}
            return Response(body, status=202)
        result = services.image_upload(project=project, files=files, uploaded_by=request.user, **parsed.validated_data)
        body = {"created": ImageOut(result.created, many=True).data, "duplicates": result.duplicates}
        return Response(body, status=201 if result.created else 200)


class ImageDetailView(APIView):
    @extend_schema(responses={200: ImageOut})
    def get(self, request, image_id):
        image = get_image_for(request.user, image_id)
        return Response(ImageOut(selectors.image_detail(image=image)).data)

    @extend_schema(request=ImageUpdateIn, responses={200: ImageOut})
    def patch(self, request, image_id):
        """Change ``state`` (annotators and admins: marking an image normal is annotation
        work) and/or ``split`` (admins: it decides what a model trains on)."""
        image = get_image_for(request.user, image_id)
        changes = ImageUpdateIn(data=request.data)
        changes.is_valid(raise_exception=True)
        data = changes.validated_data
        if "split" in data:
            require_role(request.user, image.project, *MANAGE, action="change an image's split")
        else:
            require_role(request.user, image.project, *ANNOTATE, action="change an image's state")
        image = services.image_update(image=image, actor=request.user, **data)
        return Response(ImageOut(selectors.image_detail(image=image)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, image_id):
        image = get_image_for(request.user, image_id, roles=MANAGE, action="delete images")
        services.image_delete(image=image, actor=request.user)
        return Response(status=204)


class ImageFileView(APIView):
    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, 304: None})
    def get(self, request, image_id):
        image = get_image_for(request.user, image_id)

        def load() -> bytes:
            with image.file.open("rb") as stored:
                return stored.read()

        return etag_response(request, etag=image.sha256, load=load, content_type=image.content_type,
                             cache=IMMUTABLE, filename=image.original_name)


# Shown while a thumbnail is being made: a grey square the size of one (never cached).
THUMBNAIL_PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
    b'<rect width="256" height="256" fill="#d9dce1"/></svg>'
)


class ImageThumbnailView(APIView):
    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, (202, "image/svg+xml"): OpenApiTypes.BINARY, 304: None})
    def get(self, request, image_id):
        """The thumbnail (JPEG, longest side 256 px). Thumbnails are made by a task after the
        upload; until then: 202 with a placeholder and ``Retry-After`` (and the task is queued
        again): an original is never decoded inside a request."""
        image = get_image_for(request.user, image_id)
        if not image.thumbnail:
            services.image_thumbnail_request(image=image)
            response = HttpResponse(THUMBNAIL_PLACEHOLDER, content_type="image/svg+xml", status=202)
            response["Retry-After"] = "2"
            response["Cache-Control"] = "no-store"
            return response

        def load_thumbnail() -> bytes:
            with image.thumbnail.open("rb") as stored:
                return stored.read()

        # Known key: a revalidation gets its 304 without reading the thumbnail.
        return etag_response(request, etag=image.thumbnail.name, load=load_thumbnail, content_type="image/jpeg", cache=IMMUTABLE)

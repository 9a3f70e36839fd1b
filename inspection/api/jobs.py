"""Jobs API: read a job, cancel it, list a project's jobs, follow it live.

The UI may poll ``GET /api/jobs/{id}/?log_from=N`` every second (only new log
lines come back) or open ``GET /api/jobs/{id}/events``, a server-sent event
stream that sends the job whenever it changes and ends once it is terminal.
"""
from __future__ import annotations

import json
import time

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers
from rest_framework.response import Response
from rest_framework.views import APIView

from inspection import selectors
from inspection.api.serializers import JobSerializer
from projects.api.pagination import paginate
from projects.jobs import job_cancel
from projects.models import Job
from projects.permissions import MANAGE, READ, get_owned_for, get_project_for, project_role


def job_for(user, job_id, *, roles=READ, action: str | None = None) -> Job:
    """A job by id for ``user``: 404 for outsiders and missing jobs, 403 for the wrong role."""
    return get_owned_for(
        user, Job.objects.select_related("project", "requested_by"), job_id, noun="job", roles=roles, action=action
    )


def _is_admin(user, job: Job) -> bool:
    return project_role(user, job.project) in MANAGE


def _log_from(request) -> int:
    try:
        return max(int(request.query_params.get("log_from", 0)), 0)
    except ValueError:
        return 0


LOG_FROM = OpenApiParameter("log_from", int, description="send only log lines from this index on (the log_count you have)")


class JobDetailView(APIView):
    @extend_schema(parameters=[LOG_FROM], responses={200: JobSerializer})
    def get(self, request, pk: int):
        job = job_for(request.user, pk)
        context = {"log_from": _log_from(request), "show_traceback": _is_admin(request.user, job)}
        return Response(JobSerializer(job, context=context).data)


class JobCancelView(APIView):
    @extend_schema(request=None, responses={200: JobSerializer, 202: JobSerializer})
    def post(self, request, pk: int):
        job = job_for(request.user, pk, roles=MANAGE, action="cancel jobs")
        job = job_cancel(job=job, by=request.user)
        return Response(JobSerializer(job).data, status=202 if not job.is_terminal else 200)


class ProjectJobListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=list(Job.Kind.values)), OpenApiParameter("status", str, enum=list(Job.Status.values))],
        responses={200: JobSerializer(many=True)},
    )
    def get(self, request, pk: int):
        project = get_project_for(request.user, pk)
        jobs = selectors.project_jobs(
            project=project, kind=request.query_params.get("kind") or None, status=request.query_params.get("status") or None
        ).select_related("requested_by")
        context = {"log_from": 10**9, "show_traceback": project_role(request.user, project) in MANAGE}
        return paginate(self, jobs, JobSerializer, context=context)


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/event-stream`` through DRF's content negotiation."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return f"event: error\ndata: {json.dumps(data, default=str)}\n\n".encode()


class JobEventsView(APIView):
    renderer_classes = [EventStreamRenderer, renderers.JSONRenderer]

    @extend_schema(
        parameters=[LOG_FROM],
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        description="Server-sent events: `progress` (the job, as GET /api/jobs/{id}/ returns it, with new log lines) "
        "on every change, `end` once the job is terminal.",
    )
    def get(self, request, pk: int):
        job = job_for(request.user, pk)
        stream = _job_events(job.pk, _log_from(request), _is_admin(request.user, job))
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response


def _job_events(job_id: int, log_from: int, show_traceback: bool):
    """Yield the job as a ``progress`` event whenever it changes; a ``keepalive`` comment
    when it does not for a while; a final ``end`` event once it is terminal.

    A stream lasts at most INSPECTION_SSE_MAX_SECONDS; the browser's EventSource
    reconnects by itself (``retry``), which frees the web worker now and then.
    """
    poll = getattr(settings, "INSPECTION_SSE_POLL_SECONDS", 0.5)
    deadline = time.monotonic() + getattr(settings, "INSPECTION_SSE_MAX_SECONDS", 300)
    last_key = None
    last_sent = time.monotonic()
    sent_lines = log_from
    yield "retry: 1000\n\n"
    while True:
        job = Job.objects.select_related("requested_by").get(pk=job_id)
        key = (job.status, job.stage, job.progress, job.eta_seconds, len(job.log or []), job.cancel_requested)
        if key != last_key:
            data = JobSerializer(job, context={"log_from": sent_lines, "show_traceback": show_traceback}).data
            sent_lines = len(job.log or [])
            yield f"event: progress\nid: {sent_lines}\ndata: {json.dumps(data, default=str)}\n\n"
            last_key, last_sent = key, time.monotonic()
        if job.is_terminal:
            yield f"event: end\ndata: {json.dumps({'status': job.status})}\n\n"
            return
        if time.monotonic() > deadline:
            return
        if time.monotonic() - last_sent > 15:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        time.sleep(poll)

"""Jobs API: read a job, cancel it, list a project's jobs.

The UI follows a job by polling ``GET /api/jobs/{id}/?log_from=N`` every second
(only new log lines come back). There is no server-sent event stream: on the
sync gunicorn workers an open stream held a worker for minutes, so two of them
made every other user wait; a poll is one short request.
"""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
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

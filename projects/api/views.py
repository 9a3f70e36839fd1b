"""Projects, members, stats and the audit log. Views parse, call one service or
selector, serialize; role checks go through projects.permissions."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from projects import selectors, services
from projects.api.pagination import Pagination, paginate
from projects.api.serializers import (
    AuditEventOut,
    MemberAddIn,
    MemberOut,
    MemberRoleIn,
    ProjectCreateIn,
    ProjectOut,
    ProjectUpdateIn,
)
from projects.errors import PermissionDenied
from projects.permissions import MANAGE, get_project_for


def _parse(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ProjectListView(APIView):
    pagination_class = Pagination  # also tells the schema that the list is paginated
    @extend_schema(responses={200: ProjectOut(many=True)})
    def get(self, request):
        roles = selectors.roles_of(request.user)
        return paginate(self, selectors.project_list_for(request.user), ProjectOut, context={"roles": roles})

    @extend_schema(request=ProjectCreateIn, responses={201: ProjectOut})
    def post(self, request):
        if not request.user.is_staff:
            raise PermissionDenied("only staff (admins of the platform) may create projects")
        project = services.project_create(created_by=request.user, **_parse(ProjectCreateIn, request.data))
        return Response(ProjectOut(project, context={"roles": {project.pk: "admin"}}).data, status=201)


class ProjectDetailView(APIView):
    @extend_schema(responses={200: ProjectOut})
    def get(self, request, project_id):
        project = get_project_for(request.user, project_id)
        return Response(ProjectOut(project, context={"roles": selectors.roles_of(request.user)}).data)

    @extend_schema(request=ProjectUpdateIn, responses={200: ProjectOut})
    def patch(self, request, project_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="change the project")
        project = services.project_update(project=project, actor=request.user, **_parse(ProjectUpdateIn, request.data))
        return Response(ProjectOut(project, context={"roles": selectors.roles_of(request.user)}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="delete the project")
        services.project_delete(project=project, actor=request.user)
        return Response(status=204)


class MemberListView(APIView):
    pagination_class = Pagination  # also tells the schema that the list is paginated
    @extend_schema(responses={200: MemberOut(many=True)})
    def get(self, request, project_id):
        project = get_project_for(request.user, project_id)
        return paginate(self, selectors.membership_list(project=project), MemberOut)

    @extend_schema(request=MemberAddIn, responses={201: MemberOut})
    def post(self, request, project_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="add members")
        membership = services.membership_add(project=project, actor=request.user, **_parse(MemberAddIn, request.data))
        return Response(MemberOut(membership).data, status=201)


class MemberDetailView(APIView):
    @extend_schema(request=MemberRoleIn, responses={200: MemberOut})
    def patch(self, request, project_id, user_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="change roles")
        membership = selectors.membership_get(project=project, user_id=user_id)
        membership = services.membership_change_role(
            membership=membership, actor=request.user, **_parse(MemberRoleIn, request.data)
        )
        return Response(MemberOut(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, user_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="remove members")
        services.membership_remove(membership=selectors.membership_get(project=project, user_id=user_id), actor=request.user)
        return Response(status=204)


class ProjectStatsView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, project_id):
        project = get_project_for(request.user, project_id)
        return Response(selectors.project_stats(project=project))


class AuditEventListView(APIView):
    pagination_class = Pagination  # also tells the schema that the list is paginated
    @extend_schema(responses={200: AuditEventOut(many=True)})
    def get(self, request, project_id):
        project = get_project_for(request.user, project_id, roles=MANAGE, action="read the audit log")
        return paginate(self, selectors.audit_event_list(project=project), AuditEventOut)

"""A plain server-rendered page listing projects and their images: works without
JavaScript, as a fallback next to the real UI. Reads through the same permission
helpers and selectors as the API."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from projects.errors import NotFound
from projects.permissions import get_project_for
from projects.selectors import image_list, project_list_for, project_stats, roles_of

LOGIN = "/plain/login/"


class PlainLoginView(LoginView):
    template_name = "frontend/plain/login.html"
    next_page = "/plain/"


@login_required(login_url=LOGIN)
def projects_page(request):
    roles = roles_of(request.user)
    projects = [(project, roles.get(project.pk)) for project in project_list_for(request.user)]
    return render(request, "frontend/plain/projects.html", {"projects": projects})


@login_required(login_url=LOGIN)
def project_page(request, project_id: int):
    try:
        project = get_project_for(request.user, project_id)
    except NotFound:
        raise Http404("project not found") from None
    page = Paginator(image_list(project=project), 60).get_page(request.GET.get("page"))
    return render(request, "frontend/plain/project.html", {
        "project": project, "page": page, "stats": project_stats(project=project),
        "role": roles_of(request.user).get(project.pk),
    })

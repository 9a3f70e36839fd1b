"""Role checks for every endpoint and service (DESIGN.md section 2 "Roles").

One role per project member: ``inspector``, ``annotator`` or ``admin``; staff
users are admins of every project. Outsiders get 404 (they must not learn that
a project or image exists); members without the needed role get 403.

Role matrix, as tuples to pass to :func:`require_role` and the loaders:

=================  ==========================================================
``READ``           every member: list and view projects, images, masks, jobs
``ANNOTATE``       annotators and admins: edit polygons, mark images normal
``REVIEW``         inspectors and admins: give verdicts on predictions
``MANAGE``         admins only: create/edit/delete projects, members, upload,
                   import and delete data, train, activate models, thresholds
=================  ==========================================================
"""
from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from projects.errors import NotFound, PermissionDenied
from projects.models import Image, Membership, Project

ADMIN = Membership.Role.ADMIN.value
ANNOTATOR = Membership.Role.ANNOTATOR.value
INSPECTOR = Membership.Role.INSPECTOR.value

READ: tuple[str, ...] = (INSPECTOR, ANNOTATOR, ADMIN)
ANNOTATE: tuple[str, ...] = (ANNOTATOR, ADMIN)
REVIEW: tuple[str, ...] = (INSPECTOR, ADMIN)
MANAGE: tuple[str, ...] = (ADMIN,)


def _is_member_candidate(user) -> bool:
    """A signed-in, active, non-staff user: their role comes from a membership row."""
    return bool(user is not None and user.is_authenticated and user.is_active and not user.is_staff)


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def project_role(user, project: Project | int) -> str | None:
    """The user's role in ``project`` (``"admin"`` for staff), or None for outsiders."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff:
        return ADMIN
    project_id = project.pk if isinstance(project, Project) else project
    return Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()


_UNKNOWN = object()


def require_role(user, project: Project | int, *roles: str, action: str | None = None, role=_UNKNOWN) -> str:
    """Return the user's role, or raise: NotFound for outsiders, PermissionDenied
    for members whose role is not in ``roles`` (no roles = any member). ``role``: the
    membership role already read with the row (see :func:`_with_caller_role`), saving a query."""
    if role is _UNKNOWN:
        role = project_role(user, project)
    if role is None:
        raise NotFound("project not found")
    if roles and role not in roles:
        what = action or "do this"
        raise PermissionDenied(
            f"your role in this project is {role}; only {' or '.join(roles)} may {what}",
            details={"role": role, "required": list(roles)},
        )
    return role


def projects_visible_to(user) -> QuerySet[Project]:
    """Projects the user may read: all for staff, their memberships otherwise."""
    if _is_staff(user):
        return Project.objects.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


def _with_caller_role(queryset: QuerySet, user, project_field: str) -> QuerySet:
    """``queryset`` annotated with ``caller_role``, the user's membership role in the row's project
    (``project_field``), so that one query loads the row and the role every endpoint checks."""
    if not _is_member_candidate(user):
        return queryset  # staff and signed-out users: project_role answers without a membership
    role = Membership.objects.filter(project=OuterRef(project_field), user=user).values("role")[:1]
    return queryset.annotate(caller_role=Subquery(role))


def get_project_for(user, project_id, *, roles: tuple[str, ...] = READ, action: str | None = None) -> Project:
    """Load a project by id for ``user``: 404 if absent or invisible, 403 if the role is wrong."""
    try:
        project = _with_caller_role(Project.objects.all(), user, "pk").get(pk=int(project_id))
    except (Project.DoesNotExist, TypeError, ValueError):
        raise NotFound("project not found") from None
    require_role(user, project, *roles, action=action, role=getattr(project, "caller_role", _UNKNOWN))
    return project


def get_owned_for(
    user,
    queryset: QuerySet,
    pk,
    *,
    noun: str,
    roles: tuple[str, ...] = READ,
    action: str | None = None,
    project=lambda obj: obj.project,
    project_field: str = "project",
):
    """Load one row of a project-owned model by id for ``user``.

    A missing row and an outsider get the same 404 ("<noun> not found"), so an
    outsider cannot tell which; a member without one of ``roles`` gets 403.
    ``project(obj)`` says which project the row belongs to and ``project_field`` is the same
    path as a lookup (``"image__project"``), for reading the caller's role with the row.
    """
    try:
        obj = _with_caller_role(queryset, user, project_field).get(pk=int(pk))
    except (queryset.model.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"{noun} not found") from None
    try:
        require_role(user, project(obj), *roles, action=action, role=getattr(obj, "caller_role", _UNKNOWN))
    except NotFound:
        raise NotFound(f"{noun} not found") from None
    return obj


def get_image_for(user, image_id, *, roles: tuple[str, ...] = READ, action: str | None = None) -> Image:
    """Load an image (with its project) by id for ``user``, with the same rules as projects."""
    return get_owned_for(user, Image.objects.select_related("project"), image_id, noun="image", roles=roles, action=action)

"""Reads of the ground floor that need more than a ``.get`` (STYLE.md selectors)."""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, QuerySet

from projects.errors import ApplicationError, NotFound
from projects.models import AuditEvent, Image, Membership, Project
from projects.permissions import ADMIN, projects_visible_to

def _with_annotated(queryset: QuerySet[Image]) -> QuerySet[Image]:
    # "Annotated" = the image's annotation set holds at least one polygon. Read through
    # the reverse relation names so this floor does not import the annotations app.
    has_polygons = Image.objects.filter(pk=OuterRef("pk"), annotation_set__annotations__isnull=False)
    return queryset.annotate(annotated=Exists(has_polygons))


def image_list(
    *, project: Project, split: str | None = None, state: str | None = None, annotated: bool | None = None,
    name: str | None = None,
) -> QuerySet[Image]:
    """A project's images, oldest first, filtered; each carries ``annotated``."""
    if split and split not in Image.Split.values:
        raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}")
    if state and state not in Image.State.values:
        raise ApplicationError(f"state: {state!r} is not one of {', '.join(Image.State.values)}")
    images = _with_annotated(Image.objects.filter(project=project)).select_related("uploaded_by")
    if split:
        images = images.filter(split=split)
    if state:
        images = images.filter(state=state)
    if annotated is not None:
        images = images.filter(annotated=annotated)
    if name:
        images = images.filter(original_name__icontains=name)
    return images.order_by("id")


def image_detail(*, image: Image) -> Image:
    return _with_annotated(Image.objects.filter(pk=image.pk)).select_related("uploaded_by").get()


def project_list_for(user) -> QuerySet[Project]:
    return projects_visible_to(user).annotate(image_count=Count("images", distinct=True)).order_by("name", "id")


def roles_of(user) -> dict[int, str]:
    """``{project_id: role}`` for every project the user can see (staff: admin of all)."""
    if user.is_staff:
        return {pk: ADMIN for pk in Project.objects.values_list("pk", flat=True)}
    return dict(Membership.objects.filter(user=user).values_list("project_id", "role"))


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def membership_get(*, project: Project, user_id) -> Membership:
    try:
        return Membership.objects.select_related("user", "project").get(project=project, user_id=int(user_id))
    except (Membership.DoesNotExist, TypeError, ValueError):
        raise NotFound("member not found") from None


def project_stats(*, project: Project) -> dict:
    """Image counts by split and state, and totals."""
    counts = {split: {state: 0 for state in Image.State.values} for split in Image.Split.values}
    rows = Image.objects.filter(project=project).values("split", "state").annotate(n=Count("id"))
    for row in rows:
        counts[row["split"]][row["state"]] = row["n"]
    total = sum(n for by_state in counts.values() for n in by_state.values())
    annotated = _with_annotated(Image.objects.filter(project=project)).filter(annotated=True).count()
    return {
        "counts": counts,
        "by_split": {split: sum(by_state.values()) for split, by_state in counts.items()},
        "by_state": {state: sum(counts[split][state] for split in counts) for state in Image.State.values},
        "totals": {"images": total, "annotated": annotated},
    }


def audit_event_list(*, project: Project) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(project=project).select_related("actor").order_by("-created_at", "-id")

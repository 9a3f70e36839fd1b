"""Role checks: outsiders see nothing (404), members without the role get 403, staff are admins."""
from __future__ import annotations

import pytest

from projects.errors import NotFound, PermissionDenied
from projects.permissions import ANNOTATE, MANAGE, READ, REVIEW, get_image_for, get_project_for, project_role, require_role

pytestmark = pytest.mark.django_db


def test_roles_of_the_personas(project, alice, bob, charlie, dave, staff_user):
    assert [project_role(u, project) for u in (alice, bob, charlie, dave, staff_user)] == [
        "admin", "annotator", "inspector", None, "admin"]


def test_inactive_users_have_no_role(project, bob):
    bob.is_active = False
    bob.save()
    assert project_role(bob, project) is None


@pytest.mark.parametrize("roles, allowed", [
    (READ, {"alice", "bob", "charlie"}), (ANNOTATE, {"alice", "bob"}), (REVIEW, {"alice", "charlie"}), (MANAGE, {"alice"}),
])
def test_matrix(project, alice, bob, charlie, roles, allowed):
    for user in (alice, bob, charlie):
        if user.username in allowed:
            assert require_role(user, project, *roles)
        else:
            with pytest.raises(PermissionDenied, match=f"your role in this project is {project_role(user, project)}"):
                require_role(user, project, *roles, action="train")


def test_outsider_gets_not_found_for_projects_and_images(project, dave, image_factory):
    image = image_factory(project)[0]
    with pytest.raises(NotFound, match="project not found"):
        get_project_for(dave, project.pk)
    with pytest.raises(NotFound, match="image not found"):
        get_image_for(dave, image.pk)
    with pytest.raises(NotFound):
        get_project_for(dave, "not-a-number")


def test_message_names_the_action_and_required_roles(project, charlie):
    with pytest.raises(PermissionDenied) as caught:
        get_project_for(charlie, project.pk, roles=MANAGE, action="launch training")
    assert caught.value.message == "your role in this project is inspector; only admin may launch training"
    assert caught.value.status == 403 and caught.value.details == {"role": "inspector", "required": ["admin"]}

"""Input parsing and output shapes of the projects API (no business rules here)."""
from __future__ import annotations

from rest_framework import serializers

from projects.models import AuditEvent, Image, Membership, Project


class ProjectOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role in this project.")
    image_count = serializers.IntegerField(read_only=True, required=False)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "kind", "image_size", "created_by", "created_at", "role", "image_count"]

    def get_role(self, project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class ProjectCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Project.Kind.choices, default=Project.Kind.UNSUPERVISED)
    image_size = serializers.IntegerField(min_value=16, max_value=4096, default=256)


class ProjectUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Project.Kind.choices, required=False)
    image_size = serializers.IntegerField(min_value=16, max_value=4096, required=False)


class MemberOut(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "created_at"]


class MemberAddIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberRoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class ImageOut(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    annotated = serializers.BooleanField(read_only=True, default=False)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    mask_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "project", "original_name", "width", "height", "sha256", "content_type", "split", "state",
            "annotated", "uploaded_by", "created_at", "file_url", "thumbnail_url", "mask_url",
        ]

    def get_file_url(self, image) -> str:
        return f"/api/images/{image.pk}/file"

    def get_thumbnail_url(self, image) -> str:
        return f"/api/images/{image.pk}/thumbnail"

    def get_mask_url(self, image) -> str:
        return f"/api/images/{image.pk}/mask.png"


class ImageListQuery(serializers.Serializer):
    split = serializers.ChoiceField(choices=Image.Split.choices, required=False)
    state = serializers.ChoiceField(choices=Image.State.choices, required=False)
    annotated = serializers.ChoiceField(choices=["true", "false"], required=False)
    name = serializers.CharField(required=False, help_text="Part of the original file name.")


class ImageUpdateIn(serializers.Serializer):
    split = serializers.ChoiceField(choices=Image.Split.choices, required=False)
    state = serializers.ChoiceField(choices=Image.State.choices, required=False)


class UploadIn(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="Images and/or zip archives of images.")
    split = serializers.ChoiceField(choices=Image.Split.choices, default=Image.Split.UNASSIGNED)
    state = serializers.ChoiceField(choices=Image.State.choices, default=Image.State.UNLABELED)


class UploadOut(serializers.Serializer):
    created = ImageOut(many=True)
    duplicates = serializers.ListField(child=serializers.DictField())
    job = serializers.DictField(required=False, help_text="202 only: the import job processing a large upload.")


class AuditEventOut(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "actor", "verb", "object_type", "object_id", "details", "created_at"]


class CredentialsIn(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, max_length=1024)


class PasswordChangeIn(serializers.Serializer):
    old_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, max_length=1024)
    new_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, max_length=1024)


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    projects = serializers.ListField(child=serializers.DictField())
    roles = serializers.DictField(child=serializers.CharField())

"""Who may read the OpenAPI schema and its docs page: signed-in users, or anyone when API_SCHEMA_PUBLIC is on."""
from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission


class SchemaAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        return settings.API_SCHEMA_PUBLIC or bool(request.user and request.user.is_authenticated)

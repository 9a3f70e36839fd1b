"""Sign-in endpoints: per-user API tokens, and session login/logout for the browser UI."""
from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.models import Project
from projects.api.serializers import CredentialsIn, MeOut
from projects.selectors import roles_of


def _authenticate(request):
    data = CredentialsIn(data=request.data)
    data.is_valid(raise_exception=True)
    user = authenticate(request, username=data.validated_data["username"], password=data.validated_data["password"])
    if user is None or not user.is_active:
        raise ApplicationError("wrong username or password", status=401)
    return user


def me_payload(user) -> dict:
    roles = roles_of(user)
    projects = Project.objects.filter(pk__in=roles).order_by("name").values("id", "name", "slug")
    return {
        "id": user.pk,
        "username": user.username,
        "is_staff": user.is_staff,
        "projects": [{**project, "role": roles[project["id"]]} for project in projects],
        "roles": {str(pk): role for pk, role in roles.items()},
    }


class TokenView(APIView):
    """POST username + password -> ``{"token": ...}``; send it as ``Authorization: Token <token>``."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=CredentialsIn, responses={200: dict})
    def post(self, request):
        user = _authenticate(request)
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_record(user, "auth.token_create", user)
        return Response({"token": token.key, "user": me_payload(user)})


class LoginView(APIView):
    """Session login for the browser. CSRF is checked even though nobody is signed in
    yet (login CSRF); the cookie comes from any earlier GET, e.g. /api/auth/me/."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=CredentialsIn, responses={200: MeOut})
    def post(self, request):
        SessionAuthentication().enforce_csrf(request)
        user = _authenticate(request)
        login(request, user)
        return Response(me_payload(user))


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        logout(request)
        return Response(status=204)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class MeView(APIView):
    """The signed-in user and their role in every project they can see (also sets the CSRF cookie)."""

    @extend_schema(responses={200: MeOut})
    def get(self, request):
        return Response(me_payload(request.user))

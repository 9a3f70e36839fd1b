"""Sign-in endpoints: per-user API tokens, and session login/logout for the browser UI."""
from __future__ import annotations

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.models import Project
from projects.api.serializers import CredentialsIn, MeOut, PasswordChangeIn
from projects.api.throttles import SignInFailureThrottle, SignInRateThrottle, sign_in_failure_record
from projects.api.tokens import token_issue, tokens_revoke
from projects.selectors import roles_of


def _authenticate(request):
    data = CredentialsIn(data=request.data)
    data.is_valid(raise_exception=True)
    user = authenticate(request, username=data.validated_data["username"], password=data.validated_data["password"])
    if user is None or not user.is_active:  # the authentication backend counted the failure
        raise ApplicationError("wrong username or password", status=401)
    return user


SIGN_IN_THROTTLES = [SignInRateThrottle, SignInFailureThrottle]


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
    throttle_classes = SIGN_IN_THROTTLES

    @extend_schema(request=CredentialsIn, responses={200: dict})
    def post(self, request):
        user = _authenticate(request)
        token, created = token_issue(user=user)
        if created:
            audit_record(user, "auth.token_create", user)
        return Response({"token": token.key, "user": me_payload(user)})


class LoginView(APIView):
    """Session login for the browser. CSRF is checked even though nobody is signed in
    yet (login CSRF); the cookie comes from any earlier GET, e.g. /api/auth/me/."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = SIGN_IN_THROTTLES

    @extend_schema(request=CredentialsIn, responses={200: MeOut})
    def post(self, request):
        SessionAuthentication().enforce_csrf(request)
        user = _authenticate(request)
        login(request, user)
        return Response(me_payload(user))


class LogoutView(APIView):
    """Ends the session and revokes the user's API tokens."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        user = request.user
        if tokens_revoke(user=user):
            audit_record(user, "auth.token_revoke", user, details={"reason": "logout"})
        logout(request)
        return Response(status=204)


class PasswordChangeView(APIView):
    """Change one's own password: the old one is required, the new one must pass
    AUTH_PASSWORD_VALIDATORS; API tokens are revoked, this session stays signed in."""

    throttle_classes = SIGN_IN_THROTTLES

    @extend_schema(request=PasswordChangeIn, responses={204: None})
    def post(self, request):
        data = PasswordChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        if not user.check_password(data.validated_data["old_password"]):
            sign_in_failure_record(request, user.username)
            raise ApplicationError("old_password: wrong password", details={"key": "old_password"})
        try:
            validate_password(data.validated_data["new_password"], user)
        except DjangoValidationError as exc:
            raise ApplicationError(f"new_password: {' '.join(exc.messages)}",
                                   details={"key": "new_password", "problems": exc.messages}) from None
        with transaction.atomic():
            user.set_password(data.validated_data["new_password"])
            user.save(update_fields=["password"])
            tokens_revoke(user=user)
            audit_record(user, "auth.password_change", user)
        update_session_auth_hash(request, user)
        return Response(status=204)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class MeView(APIView):
    """The signed-in user and their role in every project they can see (also sets the CSRF cookie)."""

    @extend_schema(responses={200: MeOut})
    def get(self, request):
        return Response(me_payload(request.user))

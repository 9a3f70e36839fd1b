"""API tokens that expire (API_TOKEN_TTL_HOURS) and are revoked on logout and password change."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


def token_expired(token: Token) -> bool:
    return token.created + timedelta(hours=settings.API_TOKEN_TTL_HOURS) <= timezone.now()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than API_TOKEN_TTL_HOURS."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            token.delete()
            raise AuthenticationFailed("API token expired; ask for a new one at POST /api/auth/token/")
        return user, token


def token_issue(*, user) -> tuple[Token, bool]:
    """The user's live token, or a new one (an expired one is replaced): ``(token, created)``."""
    with transaction.atomic():
        token = Token.objects.select_for_update().filter(user=user).first()
        if token is not None and not token_expired(token):
            return token, False
        if token is not None:
            token.delete()
        return Token.objects.create(user=user), True


def tokens_revoke(*, user) -> int:
    """Delete the user's API tokens (logout, password change); returns how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted

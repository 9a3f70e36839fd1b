"""Sign-in throttles, on the configured cache.

``SignInRateThrottle`` (DRF) caps all API sign-in attempts per client address
(``DEFAULT_THROTTLE_RATES["sign_in"]``), bounding password-hashing CPU.
Wrong passwords are counted per client address and per username, whatever the
door (API token, API login, the plain pages' login form, the admin login): the
authentication backend (:class:`projects.auth_backends.ThrottledModelBackend`)
records every failure and refuses every attempt once an address or a username
collected ``SIGN_IN_MAX_FAILURES`` within ``SIGN_IN_FAILURE_WINDOW_SECONDS``;
the API answers that state with 429 (``SignInFailureThrottle``). Only failures
count, so people who type their password right are never slowed down. The
counters are read and written without a lock: racing attempts may lose a few
counts, never more than the number of parallel requests.
"""
from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


class SignInRateThrottle(SimpleRateThrottle):
    scope = "sign_in"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _keys(request, username) -> list[str]:
    keys = []
    if request is not None and hasattr(request, "META"):
        keys.append(f"sign-in-failures:ip:{BaseThrottle().get_ident(request)}")
    if isinstance(username, str) and username:
        # Hashed: usernames may hold any characters; cache keys may not.
        digest = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
        keys.append(f"sign-in-failures:user:{digest}")
    return keys


def _recent(key: str, now: float) -> list[float]:
    window = settings.SIGN_IN_FAILURE_WINDOW_SECONDS
    return [t for t in cache.get(key, []) if t > now - window]


def sign_in_wait(request, username) -> float:
    """Seconds until sign-in is allowed again for this address or username; 0 when it is now."""
    now = time.time()
    wait = 0.0
    for key in _keys(request, username):
        recent = _recent(key, now)
        if len(recent) >= settings.SIGN_IN_MAX_FAILURES:
            wait = max(wait, recent[-settings.SIGN_IN_MAX_FAILURES] + settings.SIGN_IN_FAILURE_WINDOW_SECONDS - now)
    return wait


def sign_in_failure_record(request, username) -> None:
    now = time.time()
    for key in _keys(request, username):
        cache.set(key, [*_recent(key, now), now], settings.SIGN_IN_FAILURE_WINDOW_SECONDS)


class SignInFailureThrottle(BaseThrottle):
    """429 on the API's sign-in endpoints while the address or the username is locked out."""

    def __init__(self):
        self._wait = 0.0

    def allow_request(self, request, view) -> bool:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str):
            username = getattr(request.user, "username", None) if getattr(request, "user", None) else None
        self._wait = sign_in_wait(request, username)
        return self._wait <= 0

    def wait(self) -> float:
        return max(self._wait, 1.0)

"""Throttles of the sign-in endpoints (DRF throttles on the configured cache).

``SignInRateThrottle`` caps all sign-in attempts per client address
(``DEFAULT_THROTTLE_RATES["sign_in"]``), bounding password-hashing CPU;
``SignInFailureThrottle`` answers 429 once an address, or a username from any
address, collected ``SIGN_IN_MAX_FAILURES`` wrong passwords within
``SIGN_IN_FAILURE_WINDOW_SECONDS``. Only failures count towards the second,
so people who type their password right are never locked out by it.
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


class SignInFailureThrottle(BaseThrottle):
    def __init__(self):
        self._wait = 0.0

    @staticmethod
    def _keys(request) -> list[str]:
        keys = [f"sign-in-failures:ip:{BaseThrottle().get_ident(request)}"]
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if isinstance(username, str) and username:
            # Hashed: usernames may hold any characters; cache keys may not.
            digest = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
            keys.append(f"sign-in-failures:user:{digest}")
        return keys

    @staticmethod
    def _recent(key: str, now: float) -> list[float]:
        window = settings.SIGN_IN_FAILURE_WINDOW_SECONDS
        return [t for t in cache.get(key, []) if t > now - window]

    def allow_request(self, request, view) -> bool:
        now = time.time()
        for key in self._keys(request):
            recent = self._recent(key, now)
            if len(recent) >= settings.SIGN_IN_MAX_FAILURES:
                self._wait = recent[0] + settings.SIGN_IN_FAILURE_WINDOW_SECONDS - now
                return False
        return True

    def wait(self) -> float:
        return max(self._wait, 1.0)

    @classmethod
    def record_failure(cls, request) -> None:
        now = time.time()
        for key in cls._keys(request):
            cache.set(key, [*cls._recent(key, now), now], settings.SIGN_IN_FAILURE_WINDOW_SECONDS)

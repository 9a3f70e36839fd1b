"""Django's model backend with the sign-in throttle (projects.api.throttles): every door that
checks a password (API, plain pages, admin) counts wrong ones and refuses while locked out."""
from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from projects.api.throttles import sign_in_failure_record, sign_in_wait


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if sign_in_wait(request, username) > 0:
            raise PermissionDenied("too many wrong passwords; try again later")  # authenticate() -> None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and password is not None:
            sign_in_failure_record(request, username)
        return user

"""The browser UI is one HTML shell that loads ES modules; every UI path serves it
and the modules pick the page from the URL (history routing)."""
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the API client reads the cookie for X-CSRFToken on writes
def app_shell(request, **_):
    return render(request, "frontend/app.html")

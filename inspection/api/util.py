from __future__ import annotations

from rest_framework.settings import api_settings


def paginated(request, view, queryset, serializer_class, context: dict | None = None):
    """One page of ``queryset`` in the project's standard envelope (count, next, previous, results)."""
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request, view=view)
    context = {"request": request, **(context or {})}
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context).data)


def query_bool(request, name: str) -> bool | None:
    """``?name=true|false`` as a bool, None when absent; anything else is a 400 naming the parameter."""
    from projects.errors import ApplicationError

    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ApplicationError(f"{name}: expected true or false, got {value!r}", details={"key": name})

"""The one parser of boolean query parameters of the API."""
from __future__ import annotations

from projects.errors import ApplicationError

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def query_bool(request, name: str) -> bool | None:
    """``?name=true|false`` (also 1/0, yes/no) as a bool, None when absent or empty;
    anything else is a 400 naming the parameter."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ApplicationError(f"{name}: expected true or false, got {value!r}", details={"key": name})

"""The API's JSON parser: DRF's, with bounds on nesting depth and integer size.

A 100,000-level array made ``json.loads`` raise RecursionError (a 500, for
anonymous callers too); an integer beyond 64 bits reached the database driver
(OverflowError, a 500). Both are now a 400 naming the problem.
"""
from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

INT64_MAX = 2**63 - 1


def _parse_int(text: str) -> int:
    # Digits beyond 19 cannot fit 64 bits; refuse them before Python converts a huge number.
    if len(text.lstrip("-")) > 19 or not -INT64_MAX - 1 <= (value := int(text)) <= INT64_MAX:
        raise ParseError(f"JSON parse error - integer {text[:30]}{'...' if len(text) > 30 else ''} "
                         "is out of range (64-bit signed)")
    return value


def json_depth_exceeds(data, limit: int) -> bool:
    """Whether ``data`` nests lists/objects deeper than ``limit`` (iterative: no recursion of its own)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.API_JSON_MAX_DEPTH
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth_exceeds(data, limit):
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels")
        return data


def _refuse_constant(name: str):
    raise ParseError(f"JSON parse error - {name} is not valid JSON")

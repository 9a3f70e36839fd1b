"""The API's JSON parser: DRF's, with bounds on nesting depth and integer size.

A 100,000-level array made ``json.loads`` raise RecursionError (a 500, for
anonymous callers too); an integer beyond 64 bits reached the database driver
(OverflowError, a 500). Both are now a 400 naming the problem, found on the
text before it is decoded, at C speed (a regex and numpy), so that an 8 MB
body costs a fraction of a second more, not the 10 s a per-value check took.
"""
from __future__ import annotations

import codecs
import json
import re

import numpy as np
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

INT64_MAX = 2**63 - 1
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
# A run of 19+ digits that is a whole integer token (not part of a float's fraction or exponent).
_LONG_INT = re.compile(r"(?<![\d.eE+-])-?\d{19,}(?![\d.eE])")


def _codes(skeleton: str) -> np.ndarray:
    return np.frombuffer(skeleton.encode("ascii", "replace"), dtype=np.uint8)


def json_text_depth(codes: np.ndarray) -> int:
    """Deepest bracket nesting of JSON text (as bytes) whose strings were blanked out."""
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int8)
    steps -= ((codes == ord("]")) | (codes == ord("}"))).astype(np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _longest_digit_run(codes: np.ndarray) -> int:
    digits = np.concatenate(([0], ((codes >= ord("0")) & (codes <= ord("9"))).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(digits))
    return int((edges[1::2] - edges[::2]).max(initial=0))


def check_json_text(text: str, *, max_depth: int) -> None:
    """ParseError when ``text`` nests deeper than ``max_depth`` or holds an integer beyond 64 bits."""
    skeleton = _STRING.sub('""', text)
    codes = _codes(skeleton)
    if json_text_depth(codes) > max_depth:
        raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels")
    if _longest_digit_run(codes) < 19:
        return
    for match in _LONG_INT.finditer(skeleton):
        token = match.group()
        if len(token.lstrip("-")) > 19 or not -INT64_MAX - 1 <= int(token) <= INT64_MAX:
            shown = token if len(token) <= 30 else token[:30] + "..."
            raise ParseError(f"JSON parse error - integer {shown} is out of range (64-bit signed)")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.API_JSON_MAX_DEPTH
        try:
            text = codecs.getreader(encoding)(stream).read()
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check_json_text(text, max_depth=limit)
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:  # cannot happen below the depth limit; kept as a last guard
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str):
    raise ParseError(f"JSON parse error - {name} is not valid JSON")

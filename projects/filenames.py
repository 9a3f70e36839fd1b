"""File names people upload, made safe to store and to send back in headers."""
from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_NAME_LENGTH = 500


def clean_file_name(name: str) -> str:
    """``name`` without control, format or unassigned characters (CR, LF, NUL, bidi
    overrides...), whitespace-trimmed and cut to the last 500 characters (the part
    that names the file). A stored name with a newline had made every download of
    the image fail."""
    kept = "".join(ch for ch in str(name) if not unicodedata.category(ch).startswith("C"))
    return kept.strip()[-MAX_NAME_LENGTH:] or "unnamed"


def content_disposition(name: str, *, disposition: str = "inline") -> str:
    """``Content-Disposition`` for ``name`` (RFC 6266): an ASCII ``filename`` fallback for
    old clients plus the exact name as UTF-8 in ``filename*`` (RFC 8187)."""
    base = clean_file_name(name).replace("\\", "/").rsplit("/", 1)[-1] or "unnamed"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in base)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(base, safe='')}"

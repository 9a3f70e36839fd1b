"""Checking uploaded bytes before anything is saved: images, zip archives, limits.

Pure functions over bytes (no database): the upload service calls them for
every file first, and saves only when all of them pass.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
import zipfile
from pathlib import PurePosixPath

from PIL import Image as PILImage

ALLOWED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "BMP": "image/bmp", "TIFF": "image/tiff", "WEBP": "image/webp"}


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    name: str
    data: bytes
    sha256: str
    width: int
    height: int
    content_type: str


@dataclasses.dataclass(frozen=True)
class BadFile:
    name: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.name, "error": self.error}


def check_image(name: str, data: bytes, *, max_pixels: int) -> CheckedImage | BadFile:
    """Decode ``data`` fully; a BadFile says why it is not a usable image."""
    if not data:
        return BadFile(name, "empty file")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's bomb check would fire with a different number.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            previous, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
            try:
                with PILImage.open(io.BytesIO(data)) as probe:
                    fmt = probe.format
                    width, height = probe.size
                if fmt not in ALLOWED_FORMATS:
                    return BadFile(name, f"unsupported image format {fmt}; use one of {', '.join(sorted(ALLOWED_FORMATS))}")
                if width * height > max_pixels:
                    return BadFile(
                        name,
                        f"image is {width}x{height} = {width * height} pixels, over MAX_IMAGE_PIXELS={max_pixels} "
                        "(possible decompression bomb)",
                    )
                with PILImage.open(io.BytesIO(data)) as image:
                    image.verify()
                with PILImage.open(io.BytesIO(data)) as image:
                    image.load()
            finally:
                PILImage.MAX_IMAGE_PIXELS = previous
    except PILImage.UnidentifiedImageError:
        return BadFile(name, "not an image (unrecognised file content)")
    except Exception as exc:  # truncated or corrupt data: Pillow raises many types
        return BadFile(name, f"corrupt image: {exc}")
    if width < 1 or height < 1:
        return BadFile(name, "image has no pixels")
    return CheckedImage(name, data, hashlib.sha256(data).hexdigest(), width, height, ALLOWED_FORMATS[fmt])


def is_zip(name: str, data: bytes) -> bool:
    return name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def _unsafe_entry_name(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path traversal ('..') in archive entry name"
    return None


def _skipped_entry(name: str) -> bool:
    """Directories and operating-system clutter (macOS resource forks, hidden files) are ignored."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.endswith("/") or not parts or parts[0] == "__MACOSX" or parts[-1].startswith(".")


def expand_zip(name: str, data: bytes, *, max_total_bytes: int) -> tuple[list[tuple[str, bytes]], list[BadFile]]:
    """Entries of a zip archive as (``archive.zip/path/in/zip``, bytes); bad entries listed, not raised."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        return [], [BadFile(name, f"not a valid zip archive: {exc}")]
    entries: list[tuple[str, bytes]] = []
    bad: list[BadFile] = []
    with archive:
        infos = [info for info in archive.infolist() if not _skipped_entry(info.filename)]
        unpacked = sum(info.file_size for info in infos)
        if unpacked > max_total_bytes:
            return [], [BadFile(name, f"archive unpacks to {unpacked} bytes, over MAX_UPLOAD_BYTES={max_total_bytes}")]
        for info in infos:
            label = f"{name}/{info.filename}"
            problem = _unsafe_entry_name(info.filename)
            if problem:
                bad.append(BadFile(label, problem))
                continue
            try:
                entries.append((label, archive.read(info)))
            except Exception as exc:
                bad.append(BadFile(label, f"unreadable archive entry: {exc}"))
    if not entries and not bad:
        bad.append(BadFile(name, "archive contains no files"))
    return entries, bad

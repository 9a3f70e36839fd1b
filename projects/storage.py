"""Django Storage backed by the content-addressed Blob table.

A saved file's name is the sha256 of its bytes, so identical content is
stored once and saving the same bytes twice is a no-op (deterministic keys
make retried jobs overwrite rather than duplicate). Works on Postgres and
SQLite alike.
"""
from __future__ import annotations

import hashlib
import io

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible


@deconstructible
class DatabaseBlobStorage(Storage):
    def _open(self, name: str, mode: str = "rb") -> File:
        from projects.models import Blob

        if "w" in mode or "a" in mode:
            raise ValueError("blobs are immutable; save new content instead")
        try:
            blob = Blob.objects.only("data", "size", "chunks").get(sha256=self._key(name))
        except Blob.DoesNotExist:
            raise FileNotFoundError(f"no blob {name!r}") from None
        if blob.chunks:
            reader = io.BufferedReader(_ChunkReader(blob.sha256, blob.size), buffer_size=settings.BLOB_CHUNK_BYTES)
            chunked = File(reader, name=name)
            chunked.size = blob.size
            return chunked
        return ContentFile(bytes(blob.data), name=name)

    def _save(self, name: str, content: File) -> str:
        from projects.models import Blob, BlobChunk

        chunk_bytes = settings.BLOB_CHUNK_BYTES
        content.seek(0)
        if content.size is not None and content.size <= chunk_bytes:
            data = content.read()
            if isinstance(data, str):
                data = data.encode()
            digest = hashlib.sha256(data).hexdigest()
            Blob.objects.get_or_create(sha256=digest, defaults={"data": data, "size": len(data)})
            return digest
        # Large: hash in one pass, then store piece by piece (one chunk in memory at a time),
        # all in one transaction, so a failure leaves no partial blob.
        hasher, size = hashlib.sha256(), 0
        for piece in _pieces(content, chunk_bytes):
            hasher.update(piece)
            size += len(piece)
        digest = hasher.hexdigest()
        if Blob.objects.filter(sha256=digest).exists():
            return digest
        content.seek(0)
        with transaction.atomic():
            blob = Blob.objects.create(sha256=digest, data=b"", size=size, chunks=0)
            count = 0
            for index, piece in enumerate(_pieces(content, chunk_bytes)):
                BlobChunk.objects.create(blob=blob, index=index, data=piece)
                count += 1
            Blob.objects.filter(pk=digest).update(chunks=count)
        return digest

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        # Names are content hashes chosen in _save; collisions mean equal bytes.
        return name

    def generate_filename(self, filename: str) -> str:
        return filename

    def delete(self, name: str) -> None:
        # Content is shared between rows; unreferenced blobs are removed by
        # projects.services.blob_collect_garbage, not on each delete.
        return None

    def exists(self, name: str) -> bool:
        from projects.models import Blob

        return Blob.objects.filter(sha256=self._key(name)).exists()

    def size(self, name: str) -> int:
        from projects.models import Blob

        try:
            return Blob.objects.values_list("size", flat=True).get(sha256=self._key(name))
        except Blob.DoesNotExist:
            raise FileNotFoundError(f"no blob {name!r}") from None

    def url(self, name: str) -> str:
        raise NotImplementedError("blobs are served through the API endpoints that own them")

    @staticmethod
    def _key(name: str) -> str:
        return name.rsplit("/", 1)[-1]


def _pieces(content: File, size: int):
    """``content`` in pieces of exactly ``size`` bytes (the last one shorter)."""
    buffer = b""
    while True:
        data = content.read(size - len(buffer))
        if isinstance(data, str):
            data = data.encode()
        if not data:
            break
        buffer += data
        if len(buffer) == size:
            yield buffer
            buffer = b""
    if buffer:
        yield buffer


class _ChunkReader(io.RawIOBase):
    """Reads a chunked blob one chunk (one query) at a time."""

    def __init__(self, sha256: str, size: int) -> None:
        self.sha256 = sha256
        self.size = size
        self.position = 0
        self.index = -1
        self.chunk = b""
        self.chunk_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        from projects.models import BlobChunk

        if self.position >= self.size:
            return 0
        chunk_bytes = settings.BLOB_CHUNK_BYTES
        index = self.position // chunk_bytes
        if index != self.index:
            self.chunk = bytes(BlobChunk.objects.values_list("data", flat=True).get(blob_id=self.sha256, index=index))
            self.index, self.chunk_start = index, index * chunk_bytes
        offset = self.position - self.chunk_start
        data = self.chunk[offset : offset + len(buffer)]
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def save_bytes(data: bytes, *, storage: Storage | None = None) -> str:
    """Store ``data`` and return its key (sha256 for the database backend)."""
    from projects.models import blob_storage

    storage = storage or blob_storage()
    digest = hashlib.sha256(data).hexdigest()
    return storage.save(digest, ContentFile(data, name=digest))

"""Django Storage backed by the content-addressed Blob table.

A saved file's name is the sha256 of its bytes, so identical content is
stored once and saving the same bytes twice is a no-op (deterministic keys
make retried jobs overwrite rather than duplicate). Works on Postgres and
SQLite alike.
"""
from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible


@deconstructible
class DatabaseBlobStorage(Storage):
    def _open(self, name: str, mode: str = "rb") -> File:
        from projects.models import Blob

        if "w" in mode or "a" in mode:
            raise ValueError("blobs are immutable; save new content instead")
        try:
            blob = Blob.objects.only("data").get(sha256=self._key(name))
        except Blob.DoesNotExist:
            raise FileNotFoundError(f"no blob {name!r}") from None
        return ContentFile(bytes(blob.data), name=name)

    def _save(self, name: str, content: File) -> str:
        from projects.models import Blob

        content.seek(0)
        data = content.read()
        if isinstance(data, str):
            data = data.encode()
        digest = hashlib.sha256(data).hexdigest()
        Blob.objects.get_or_create(sha256=digest, defaults={"data": data, "size": len(data)})
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


def save_bytes(data: bytes, *, storage: Storage | None = None) -> str:
    """Store ``data`` and return its key (sha256 for the database backend)."""
    from projects.models import blob_storage

    storage = storage or blob_storage()
    digest = hashlib.sha256(data).hexdigest()
    return storage.save(digest, ContentFile(data, name=digest))

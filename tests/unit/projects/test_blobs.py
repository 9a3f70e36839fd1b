"""Stored bytes: shared between rows, kept while referenced, collected when not."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from projects.models import Blob
from projects.services import blob_collect_garbage, image_delete
from projects.storage import save_bytes

pytestmark = pytest.mark.django_db


def _age_all_blobs():
    Blob.objects.update(created_at=timezone.now() - timedelta(days=2))


def test_only_unreferenced_old_blobs_are_collected(project, image_factory, alice):
    kept, deleted = image_factory(project, 2)
    orphan = save_bytes(b"left behind by a replaced mask")
    image_delete(image=deleted, actor=alice)
    fresh = save_bytes(b"saved by a job that has not committed its rows yet")
    _age_all_blobs()
    Blob.objects.filter(sha256=fresh).update(created_at=timezone.now())
    assert blob_collect_garbage(dry_run=True) == 2
    assert blob_collect_garbage() == 2
    assert set(Blob.objects.values_list("sha256", flat=True)) == {kept.sha256, fresh}
    assert not Blob.objects.filter(sha256=orphan).exists()


def test_same_bytes_in_two_projects_are_stored_once_and_survive_one_delete(project, other_project, image_factory, alice):
    first = image_factory(project)[0]
    second = image_factory(other_project)[0]
    assert first.sha256 == second.sha256 and Blob.objects.filter(sha256=first.sha256).count() == 1
    image_delete(image=first, actor=alice)
    _age_all_blobs()
    blob_collect_garbage()
    assert second.file.open("rb").read()


def test_command_reports_the_count(capsys):
    save_bytes(b"orphan")
    _age_all_blobs()
    call_command("collect_blobs", "--dry-run")
    assert "would delete 1 unreferenced blob(s)" in capsys.readouterr().out


def test_large_content_is_stored_in_chunks_once_and_reads_back_by_pieces(settings, tmp_path):
    import hashlib

    from django.core.files import File

    from projects.models import BlobChunk, blob_storage

    settings.BLOB_CHUNK_BYTES = 1024
    data = bytes(range(256)) * 21  # 5376 bytes: five full chunks and a short one
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    storage = blob_storage()
    with open(path, "rb") as handle:
        key = storage.save("big.bin", File(handle, name="big.bin"))
    assert key == hashlib.sha256(data).hexdigest()
    blob = Blob.objects.get(sha256=key)
    assert (blob.chunks, blob.size, BlobChunk.objects.filter(blob=blob).count()) == (6, len(data), 6)
    with open(path, "rb") as handle:
        assert storage.save("again.bin", File(handle, name="again.bin")) == key  # same bytes: nothing new
    assert BlobChunk.objects.count() == 6
    with storage.open(key) as stored:
        assert stored.read(10) == data[:10]
        stored.seek(1020)
        assert stored.read(10) == data[1020:1030]  # across a chunk boundary
        stored.seek(0)
        assert stored.read() == data
    assert storage.size(key) == len(data)

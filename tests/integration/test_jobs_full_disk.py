"""A full disk when an export writes its archive, through a real worker: the job fails with
the reason, no archive (not even part of one) is stored, the API answers with the envelope.

The worker's temporary files go to a 1 MB tmpfs when this process may mount one, else the
worker runs under a 1 MB file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so writes
past it fail with EFBIG). Its broker is a redis-server of this test alone.
"""
from __future__ import annotations

import resource
import subprocess

import pytest

from tests.integration.test_jobs_faults import _assert_envelope, _upload, own_redis  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]

DISK_BYTES = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mountpoint)],
                             capture_output=True).returncode == 0
    yield {"path": mountpoint, "mounted": mounted}
    if mounted:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


@pytest.fixture
def celery_worker_env(own_redis, small_disk):  # noqa: F811
    return {"CELERY_BROKER_URL": own_redis.url, "TMPDIR": str(small_disk["path"])}


@pytest.fixture
def celery_worker_preexec(small_disk):
    if small_disk["mounted"]:
        return None

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_BYTES, DISK_BYTES))

    return limit_file_size


def test_full_disk_while_an_export_writes_fails_it_with_the_reason_and_saves_no_archive(
    own_redis, small_disk, celery_worker, project, alice_api  # noqa: F811
):
    from projects.models import Blob, Job

    _upload(alice_api, project, 8, size=256, split="train", state="normal")  # noise PNGs of ~200 KB each: the export outgrows 1 MB
    blobs = Blob.objects.count()
    response = alice_api.post(f"/api/projects/{project.pk}/exports/", {"format": "mvtec"}, format="json")
    assert response.status_code == 202, response.json()
    job = celery_worker.wait_for_job(response.json()["id"], timeout=120)
    assert job.status == "failed", job.result
    assert "No space left on device" in job.error or "File too large" in job.error, job.error
    assert not job.output_file and Blob.objects.count() == blobs  # no half archive stored
    body = _assert_envelope(alice_api.get(f"/api/projects/{project.pk}/exports/{job.pk}/download"), 409)
    assert body["details"] == {"status": "failed"}
    assert Job.objects.get(pk=job.pk).finished_at is not None
    if small_disk["mounted"]:
        assert not any(small_disk["path"].iterdir())  # the temporary files were cleaned up

"""Video import through the API and a REAL Celery worker (Redis broker, Postgres): a small
generated MJPG/AVI clip becomes one image per kept frame, named by its timestamp, in frame order."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from projects.models import Image, Job
from tests.video_clips import make_avi

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def _named(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_a_clip_becomes_frames_named_by_timestamp_on_the_worker(celery_worker, alice_api, project):
    clip = make_avi(frames=12, fps=6.0)
    response = alice_api.post(
        f"/api/projects/{project.pk}/video-imports/", {"file": _named(clip, "line 4.avi"), "fps": 2, "split": "test"}, format="multipart"
    )
    assert response.status_code == 202, response.content
    job = celery_worker.wait_for_job(response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress == 1.0
    # 6 fps -> 2 fps: every third frame, i.e. frames 0, 3, 6, 9 at 0.0, 0.5, 1.0, 1.5 s.
    assert job.result["step"] == 3 and job.result["frames"] == 4
    images = list(Image.objects.filter(project=project).order_by("original_name"))
    assert [i.original_name for i in images] == [f"line 4_t{t:011.3f}s.png" for t in (0.0, 0.5, 1.0, 1.5)]
    assert {i.split for i in images} == {"test"}
    assert {(i.width, i.height) for i in images} == {(64, 48)}
    # In frame order: the bar drawn into frame i is 4 + i pixels wide.
    widths = []
    for image in images:
        with image.file.open("rb") as handle:
            pixels = np.asarray(PILImage.open(io.BytesIO(handle.read())).convert("L"))
        widths.append(int((pixels[24] > 200).sum()))
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_a_corrupt_clip_is_refused_before_any_job(celery_worker, alice_api, project):
    clip = make_avi()
    response = alice_api.post(
        f"/api/projects/{project.pk}/video-imports/", {"file": _named(clip[:150], "cut.avi"), "stride": 1}, format="multipart"
    )
    assert response.status_code == 400
    assert "cannot be decoded as a video" in response.json()["error"]
    assert not Job.objects.filter(project=project).exists() and not Image.objects.filter(project=project).exists()

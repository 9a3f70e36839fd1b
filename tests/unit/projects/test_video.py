"""Video import requests: what is refused at once (400, nothing saved) and the frame arithmetic."""
from __future__ import annotations

import io

import pytest

from projects.models import Image, Job
from projects.video import frame_step
from tests.video_clips import make_avi

pytestmark = pytest.mark.django_db

URL = "/api/projects/{}/video-imports/"


def test_a_corrupt_video_is_refused_with_a_clear_400_and_nothing_saved(alice_api, project):
    clip = make_avi()
    broken = clip[:200] + b"\x00" * 100  # the header survives, the frames do not
    for name, data in (("clip.avi", b"not a video at all"), ("clip.avi", broken), ("clip.mov", b"\x00" * 64)):
        response = alice_api.post(URL.format(project.pk), {"file": _named(data, name), "stride": 2}, format="multipart")
        assert response.status_code == 400, response.content
        assert f"'{name}' cannot be decoded as a video" in response.json()["error"]
    response = alice_api.post(URL.format(project.pk), {"file": _named(b"", "clip.mp4")}, format="multipart")
    assert response.status_code == 400 and "empty" in response.json()["error"]
    assert not Job.objects.exists() and not Image.objects.exists()


def test_an_unsupported_file_type_is_named(alice_api, project):
    response = alice_api.post(URL.format(project.pk), {"file": io.BytesIO(make_avi()), "fps": 2}, format="multipart")
    assert response.status_code == 400  # the multipart file's name is "file": no video extension
    response = alice_api.post(
        URL.format(project.pk), {"file": _named(make_avi(), "clip.gif"), "stride": 1}, format="multipart"
    )
    assert response.status_code == 400 and ".mp4, .avi, .mov" in response.json()["error"]
    assert not Job.objects.exists()


def test_stride_and_fps_together_are_refused_and_only_admins_import(alice_api, api_for, bob, project):
    response = alice_api.post(URL.format(project.pk), {"file": _named(make_avi(), "c.avi"), "stride": 2, "fps": 1}, format="multipart")
    assert response.status_code == 400 and "stride or fps" in response.json()["error"]
    response = api_for(bob).post(URL.format(project.pk), {"file": _named(make_avi(), "c.avi"), "stride": 2}, format="multipart")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_frame_step_from_stride_or_fps():
    assert frame_step(video_fps=30, stride=5, fps=None) == 5
    assert frame_step(video_fps=30, stride=None, fps=10) == 3
    assert frame_step(video_fps=30, stride=None, fps=100) == 1
    assert frame_step(video_fps=0, stride=None, fps=2) == 1


def _named(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_review_queue_in_name_order_steps_through_video_frames(alice_api, project):
    """Frames are named by timestamp; order=name gives them in frame order whatever their scores."""
    from inspection.models import ModelVersion, Prediction
    from projects.models import Image as ImageRow

    model_version = ModelVersion.objects.create(
        project=project, number=1, pipeline="rail", config={}, threshold=0.5, region_threshold=0.5, is_active=True
    )
    for i, (t, score) in enumerate(((1.0, 0.1), (0.0, 0.9), (0.5, 0.5))):
        image = ImageRow.objects.create(project=project, sha256=f"{i:064d}", width=4, height=4, original_name=f"v_t{t:011.3f}s.png")
        Prediction.objects.create(image=image, model_version=model_version, score=score, heatmap_min=0, heatmap_max=1)
    names = [p["image"]["original_name"] for p in alice_api.get(f"/api/projects/{project.pk}/review-queue/?order=name").json()["results"]]
    assert names == ["v_t0000000.000s.png", "v_t0000000.500s.png", "v_t0000001.000s.png"]
    assert alice_api.get(f"/api/projects/{project.pk}/review-queue/?order=size").status_code == 400

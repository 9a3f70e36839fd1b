"""Video import for any project (issue 13): frames of an MP4 / AVI / MOV file become images.

The request checks what it can cheaply (extension, size, a container OpenCV opens, a first
frame it decodes, the frame size) and answers 400 / 413 otherwise, saving nothing. The frames are
extracted by an import job on the ``default`` queue, every ``stride``-th frame or ``fps`` frames
per second, named by their timestamp (``<video>_t0000012.345s.png``), and saved in one
transaction at the end: a video that breaks half-way, or a cancelled job, leaves no images.
"""
from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction

from projects.audit import audit_record
from projects.errors import ApplicationError, PayloadTooLarge
from projects.jobs import JobContext, job_create
from projects.models import Image, Job, Project
from projects.uploads import BadFile, check_image

VIDEO_TASK = "projects.tasks.import_video"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov")
MAX_VIDEO_FRAMES = 2000  # frames one import may extract (each becomes an image row)


def _open(path: str):
    import cv2

    capture = cv2.VideoCapture(path)
    return capture if capture.isOpened() else None


def video_probe(*, name: str, data: bytes) -> dict[str, Any]:
    """``{"fps", "frames", "width", "height"}`` of a video OpenCV can decode; 400 naming the problem otherwise."""
    import cv2

    suffix = PurePosixPath(name or "").suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise ApplicationError(
            f"file: {name!r} is not a supported video; use one of {', '.join(VIDEO_EXTENSIONS)}",
            details={"key": "file", "reason": "unsupported_video"},
        )
    if not data:
        raise ApplicationError("file: the video is empty", details={"key": "file", "reason": "corrupt_video"})
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        capture = _open(handle.name)
        ok, frame = (False, None) if capture is None else capture.read()
        info = {}
        if ok and frame is not None:
            info = {
                "fps": float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                "frames": int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                "width": int(frame.shape[1]),
                "height": int(frame.shape[0]),
            }
        if capture is not None:
            capture.release()
    if not info:
        raise ApplicationError(
            f"file: {name!r} cannot be decoded as a video (corrupt, truncated or an unsupported codec)",
            details={"key": "file", "reason": "corrupt_video"},
        )
    if info["width"] * info["height"] > settings.MAX_IMAGE_PIXELS:
        raise ApplicationError(
            f"file: frames of {info['width']}x{info['height']} exceed MAX_IMAGE_PIXELS={settings.MAX_IMAGE_PIXELS}",
            details={"key": "file", "reason": "too_many_pixels"},
        )
    return info


def video_import_start(
    *, project: Project, actor, name: str, data: bytes, stride: int | None = None, fps: float | None = None,
    split: str = Image.Split.UNASSIGNED,
) -> Job:
    """Check the video and the settings (400 / 413, nothing saved), then queue the frame extraction."""
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"video is {len(data)} bytes, over MAX_UPLOAD_BYTES={settings.MAX_UPLOAD_BYTES}")
    if stride is not None and fps is not None:
        raise ApplicationError("give stride or fps, not both", details={"key": "stride"})
    if stride is not None and not 1 <= int(stride) <= 100_000:
        raise ApplicationError("stride: must be between 1 and 100000 frames", details={"key": "stride"})
    if fps is not None and not 0 < float(fps) <= 1000:
        raise ApplicationError("fps: must be above 0 and at most 1000", details={"key": "fps"})
    if split not in Image.Split.values:
        raise ApplicationError(f"split: {split!r} is not one of {', '.join(Image.Split.values)}", details={"key": "split"})
    info = video_probe(name=name, data=data)
    suffix = PurePosixPath(name).suffix.lower()
    params = {
        "video_name": PurePosixPath(name).name, "stride": None if stride is None else int(stride),
        "fps": None if fps is None else float(fps), "split": split, "video": info,
    }
    return job_create(
        kind=Job.Kind.IMPORT, project=project, requested_by=actor, task_name=VIDEO_TASK, params=params,
        input_file=data, input_name=f"video{suffix}",
    )


def frame_step(*, video_fps: float, stride: int | None, fps: float | None) -> int:
    """Frames to advance between extracted frames: ``stride``, or the video's fps over ``fps`` (at least 1)."""
    if stride is not None:
        return max(1, int(stride))
    if fps is not None and video_fps > 0:
        return max(1, int(round(video_fps / fps)))
    return 1


def video_import_run(ctx: JobContext) -> dict[str, Any]:
    """The work of a video import job: extract, check and save the frames (one transaction)."""
    import cv2

    from ml.formats import encode_png
    from projects.services import image_create

    job = ctx.job
    params = job.params
    stem = Path(params.get("video_name") or "video").stem or "video"
    suffix = Path(job.input_file.name).suffix or ".mp4"
    checked = []
    with job.input_file.open("rb") as source, tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(source.read())
        handle.flush()
        capture = _open(handle.name)
        if capture is None:
            raise ApplicationError(f"{params.get('video_name')!r} cannot be decoded as a video")
        try:
            video_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            step = frame_step(video_fps=video_fps, stride=params.get("stride"), fps=params.get("fps"))
            ctx.log(f"{params.get('video_name')}: {total or '?'} frames at {video_fps:g} fps; every {step}. frame")
            index = 0
            while len(checked) < MAX_VIDEO_FRAMES:
                if not capture.grab():
                    break
                if index % step == 0:
                    ok, frame = capture.retrieve()
                    if not ok:
                        raise ApplicationError(f"frame {index} of {params.get('video_name')!r} cannot be decoded")
                    seconds = index / video_fps if video_fps > 0 else float(index)
                    name = f"{stem}_t{seconds:011.3f}s.png"
                    result = check_image(name, encode_png(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), max_pixels=settings.MAX_IMAGE_PIXELS)
                    if isinstance(result, BadFile):
                        raise ApplicationError(f"{name}: {result.error}")
                    checked.append(result)
                    ctx.progress("extracting frames", min(0.99, index / total) if total else 0.5)
                index += 1
        finally:
            capture.release()
    if not checked:
        raise ApplicationError(f"no frame of {params.get('video_name')!r} could be decoded")
    ctx.check_cancelled()
    ctx.progress("saving frames", 0.99)
    created = 0
    with transaction.atomic():
        for frame in checked:
            _, new = image_create(project=job.project, checked=frame, uploaded_by=job.requested_by, split=params.get("split") or Image.Split.UNASSIGNED)
            created += int(new)
        audit_record(
            job.requested_by, "video.import", job, job.project,
            {"video": params.get("video_name"), "frames": len(checked), "images_created": created, "step": step},
        )
    ctx.progress("saving frames", 1.0)
    return {"frames": len(checked), "images_created": created, "step": step, "video_fps": video_fps}

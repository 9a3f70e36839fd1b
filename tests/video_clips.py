"""Small generated video clips for the video-import tests (written with OpenCV, MJPG in AVI)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np


def make_avi(frames: int = 12, fps: float = 6.0, width: int = 64, height: int = 48) -> bytes:
    """An MJPG/AVI clip whose frame i is a flat grey of value 10 * i (so frames differ)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        for i in range(frames):
            frame = np.full((height, width, 3), 10 * i, np.uint8)
            frame[:, : 4 + i] = 255  # a bar growing frame by frame
            writer.write(frame)
        writer.release()
        return path.read_bytes()

"""Where a user-given weights file may be: inside one configured folder. No torch import
(the web process checks training configs with it)."""
from __future__ import annotations

import os
from pathlib import Path


class WeightsPathRefused(ValueError):
    """A weights path outside the weights folder, missing, or not a file: one message for all
    three, so that the answer reveals nothing about the server's other files."""


def weights_file_in(folder: str | os.PathLike, weights_path: str) -> Path:
    """``weights_path`` (relative to ``folder``, or absolute) as an absolute path to a file inside ``folder``.

    Symlinks are resolved before the containment check, so a link inside the
    folder cannot point elsewhere.
    """
    refused = WeightsPathRefused(
        f"{weights_path!r} is not a weights file in the weights folder; put the file there and give its name"
    )
    if not isinstance(weights_path, str) or not weights_path.strip() or "\x00" in weights_path:
        raise refused
    root = Path(folder).resolve()
    path = (root / weights_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise refused
    return path

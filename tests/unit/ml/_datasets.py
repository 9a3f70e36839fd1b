"""Where the shared real datasets live for tests; tests skip when absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def datasets_dir() -> Path | None:
    env = os.environ.get("DATASETS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT / ".." / "shared" / "datasets", Path("/work/shared/datasets")]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return None


def dataset(name: str) -> Path:
    """The folder of one shared dataset, or skip the test."""
    root = datasets_dir()
    if root is None or not (root / name).is_dir():
        pytest.skip(f"real dataset {name!r} is not available (set DATASETS_DIR or provide ../shared/datasets)")
    return root / name

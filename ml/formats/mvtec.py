"""MVTec AD folder layout: listing and writing.

::

    <root>/train/good/<name>.png
    <root>/test/good/<name>.png
    <root>/test/<kind>/<name>.png
    <root>/ground_truth/<kind>/<stem>_mask.png

Images under ``*/good`` are normal, every other ``test/<kind>`` is anomalous.
Masks are looked up as ``<stem>_mask.<ext>`` (MVTec) or ``<stem>.<ext>``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np

from ml.formats.common import FormatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NORMAL_KIND = "good"


@dataclasses.dataclass(frozen=True)
class MVTecRecord:
    path: Path
    split: Literal["train", "test"]
    state: Literal["normal", "anomalous"]
    kind: str  # "good" or the defect type folder
    mask_path: Path | None


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def mvtec_layout(folder: str | Path, splits: tuple[str, ...] = ("train", "test")) -> list[MVTecRecord]:
    """Every image of an MVTec-layout folder, sorted by split, kind and name.

    Raises :class:`FormatError` when the folder lacks ``train/`` and ``test/``,
    when ``train/`` holds anything but ``good``, or when a ground-truth folder
    exists for an anomalous image but holds no mask for it.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(f"{root}: not a folder")
    present = [s for s in splits if (root / s).is_dir()]
    if not present:
        raise FormatError(f"{root}: not an MVTec AD layout folder (expected {' and/or '.join(s + '/' for s in splits)})")
    records = []
    for split in present:
        for kind_dir in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            kind = kind_dir.name
            if split == "train" and kind != NORMAL_KIND:
                raise FormatError(f"{kind_dir}: train/ may only hold '{NORMAL_KIND}' images (unsupervised protocol)")
            for path in sorted(p for p in kind_dir.iterdir() if is_image_file(p)):
                mask = None
                if kind != NORMAL_KIND:
                    mask = _find_mask(root / "ground_truth" / kind, path.stem)
                records.append(
                    MVTecRecord(path, split, "normal" if kind == NORMAL_KIND else "anomalous", kind, mask)  # type: ignore[arg-type]
                )
    return records


def _find_mask(gt_dir: Path, stem: str) -> Path | None:
    if not gt_dir.is_dir():
        return None
    for name in (f"{stem}_mask", stem):
        for ext in IMAGE_EXTENSIONS:
            candidate = gt_dir / f"{name}{ext}"
            if candidate.is_file():
                return candidate
    raise FormatError(f"{gt_dir}: no mask for image {stem!r} (expected {stem}_mask.png)")


def mvtec_image_path(split: str, kind: str, file_name: str) -> str:
    """Relative POSIX path of an image in the layout, e.g. ``test/scratch/003.png`` (PNG always)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if split == "train" and kind != NORMAL_KIND:
        raise ValueError("train/ only holds normal images")
    return f"{split}/{_safe(kind)}/{_safe(Path(file_name).stem)}.png"


def mvtec_mask_path(kind: str, file_name: str) -> str:
    """Relative POSIX path of the mask of an anomalous image, e.g. ``ground_truth/scratch/003_mask.png``."""
    return f"ground_truth/{_safe(kind)}/{_safe(Path(file_name).stem)}_mask.png"


def _safe(part: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in part).strip(".")
    if not cleaned:
        raise ValueError(f"unusable name {part!r}")
    return cleaned


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) RGB or (H, W) grey uint8 array."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def write_mvtec_sample(
    root: str | Path, split: str, kind: str, file_name: str, image: np.ndarray, mask: np.ndarray | None = None
) -> tuple[Path, Path | None]:
    """Write one image (and, for anomalous kinds, its 0/255 mask) into an MVTec layout under ``root``."""
    root = Path(root)
    image_path = root / mvtec_image_path(split, kind, file_name)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    image_path.write_bytes(encode_png(image))
    mask_path = None
    if kind != NORMAL_KIND:
        if mask is None:
            raise ValueError(f"{file_name}: an anomalous image needs a mask")
        mask_path = root / mvtec_mask_path(kind, file_name)
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        mask_path.write_bytes(encode_png(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)))
    return image_path, mask_path

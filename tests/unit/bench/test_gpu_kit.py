"""bench/gpu_kit.py packs what a lent GPU machine lacks; bench/gpu_device.sh installs it there.

The download itself needs PyPI and is not run here; what decides whether a GPU session's
few minutes are spent on benchmarks or on a broken set-up is: the shrunk datasets still load as
the benchmarks read them, masks stay masks, only the wheels the machine lacks are installed,
and the device script stops early with a clear message when something is missing."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import gpu_kit
from ml.data import ImageMaskDataset, MVTecDataset

ROOT = Path(__file__).resolve().parents[3]


def _mvtec(root: Path) -> None:
    rng = np.random.default_rng(0)
    for rel in ("train/good/000.png", "train/good/001.png", "test/good/002.png", "test/defective/003.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (300, 600, 3), dtype=np.uint8)).save(root / rel)
    mask = np.zeros((300, 600), np.uint8)
    mask[100:200, 400:500] = 255
    (root / "ground_truth" / "defective").mkdir(parents=True)
    Image.fromarray(mask).save(root / "ground_truth" / "defective" / "003_mask.png")
    (root / "classes.json").write_text('{"classes": []}')


def test_shrunk_mvtec_folder_loads_the_same_images_with_masks_kept_binary_and_in_place(tmp_path):
    source, target = tmp_path / "src", tmp_path / "out"
    _mvtec(source)
    counts = gpu_kit.shrink_tree(source, target, 256)
    assert counts == {"images": 4, "masks": 1, "files": 1}
    assert (target / "classes.json").read_text() == '{"classes": []}'
    before, after = MVTecDataset(source, "test"), MVTecDataset(target, "test")
    assert [s.label for s in after] == [s.label for s in before] == [1, 0]
    defective = after[0]
    assert defective.image.shape == (128, 256, 3)  # longer side 600 -> 256, aspect kept
    assert set(np.unique(defective.mask)) == {0, 255}  # nearest-neighbour: still a binary mask
    ys, xs = np.nonzero(defective.mask)
    # the square at rows 100-199, columns 400-499, scaled by 256/600: rows 42.7-85.3, columns 170.7-213.3
    assert np.allclose((ys.min(), ys.max() + 1, xs.min(), xs.max() + 1), (42.7, 85.3, 170.7, 213.3), atol=1)
    assert (target / "test" / "defective" / "003.jpg").is_file() and (target / "ground_truth" / "defective" / "003_mask.png").is_file()
    assert len(MVTecDataset(target, "train")) == 2


def test_shrinking_copies_only_the_parts_asked_for_and_names_a_missing_one(tmp_path):
    source = tmp_path / "src"
    for rel in ("val/images/a.png", "val/labels/a.png", "train/images/b.png"):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((360, 480), 7, np.uint8)).save(source / rel)
    gpu_kit.shrink_tree(source, tmp_path / "out", 480, ["val/images"])
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")) == ["val/images/a.jpg"]
    try:
        gpu_kit.shrink_tree(source, tmp_path / "out2", 480, ["test/images"])
    except FileNotFoundError as error:
        assert "test/images" in str(error)
    else:
        raise AssertionError("a missing part was not reported")


def test_image_mask_folders_keep_their_pairs(tmp_path):
    source = tmp_path / "src"
    for folder in ("images", "masks"):
        (source / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((512, 512, 3), np.uint8)).save(source / "images" / "p1.png")
    mask = np.zeros((512, 512), np.uint8)
    mask[:64] = 255
    Image.fromarray(mask).save(source / "masks" / "p1.png")
    gpu_kit.shrink_tree(source, tmp_path / "out", 256)
    pairs = ImageMaskDataset(tmp_path / "out")
    assert len(pairs) == 1 and pairs[0].label == 1 and pairs[0].mask[:32].all() and not pairs[0].mask[32:].any()


def test_wheels_the_gpu_machine_has_are_dropped(tmp_path):
    names = ["torch-2.11.0-cp312-cp312-linux_x86_64.whl", "nvidia_cublas_cu12-12.8-py3-none-manylinux_x86_64.whl",
             "Django-5.2.1-py3-none-any.whl", "scikit_image-0.25-cp312-cp312-manylinux_x86_64.whl",
             "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    dropped = gpu_kit.drop_preinstalled(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Django-5.2.1-py3-none-any.whl", "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl"]
    assert len(dropped) == 3
    assert gpu_kit.project_name("drf_spectacular_sidecar-2026.1-py3-none-any.whl") == "drf-spectacular-sidecar"


def _wheel(folder: Path, project: str, module: str) -> Path:
    """A minimal pure-Python wheel: ``module`` with ``VALUE = 42``."""
    path = folder / f"{project}-0.0.1-py3-none-any.whl"
    info = f"{project}-0.0.1.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{module}/__init__.py", "VALUE = 42\n")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: 0.0.1\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    return path


def _device(kit: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VAR_DIR", "PYTHONPATH")}
    env.update(KIT=str(kit), OUT=str(out), PYTHON=sys.executable, DEVICE="cpu")
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu_device.sh"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_device_script_installs_only_the_missing_wheels_and_checks_the_imports(tmp_path):
    kit = tmp_path / "kit"
    (kit / "whl").mkdir(parents=True)
    _wheel(kit / "whl", "kit_only_probe", "kit_only_probe")
    _wheel(kit / "whl", "numpy", "numpy")  # the machine has numpy: its own must stay
    done = _device(kit, tmp_path / "out", "check")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu_device: installed 1 of 2 wheels" in done.stdout
    assert (kit / "site" / "kit_only_probe" / "__init__.py").is_file()
    assert not (kit / "site" / "numpy").exists()
    assert "gpu_device: installed 1 of 2 wheels" in (tmp_path / "out" / "device.log").read_text()


def test_device_script_names_what_is_missing(tmp_path):
    (tmp_path / "kit").mkdir()
    done = _device(tmp_path / "kit", tmp_path / "out", "check")
    assert done.returncode == 2 and "no wheels under" in done.stdout and "bench/gpu_kit.py" in done.stdout
    (tmp_path / "kit" / "whl").mkdir()
    _wheel(tmp_path / "kit" / "whl", "kit_only_probe", "kit_only_probe")
    done = _device(tmp_path / "kit", tmp_path / "out", "benchmarks")
    assert done.returncode == 2 and "unknown step 'benchmarks'" in done.stdout


def test_the_kit_pins_its_wheels_as_the_requirements_do(tmp_path):
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    for line in gpu_kit.WHEELS + gpu_kit.LITE0_WHEELS:
        assert line in requirements  # a version bumped there is the version the GPU machine installs
    bumped = tmp_path / "requirements.txt"
    bumped.write_text("# web\nDjango>=6.0  # next\ncelery[redis]>=5.5\nefficientnet_lite_pytorch==0.2.0\n")
    assert gpu_kit.requirement_lines(["django", "Celery", "efficientnet-lite-pytorch"], bumped) == [
        "Django>=6.0", "celery[redis]>=5.5", "efficientnet_lite_pytorch==0.2.0"
    ]
    with pytest.raises(SystemExit, match="does not list whitenoise"):
        gpu_kit.requirement_lines(["Django", "whitenoise"], bumped)

"""bench/gpu.sh's CPU path: every step (speed, quality, inference job through a worker, road-scene frame rate, rail, reconstruction speed) runs with tiny
settings and leaves JSON that bench/report.py turns into tables. CI has no GPU; this is the path it can run."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import report

pytestmark = pytest.mark.slow


def test_gpu_benchmarks_run_on_the_cpu_with_tiny_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VAR_DIR")}
    env.update(DEVICE="cpu", OUT_DIR=str(tmp_path), PYTHON=sys.executable, OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run(["bash", str(report.ROOT / "bench" / "gpu.sh"), "--tiny"], env=env, cwd=report.ROOT,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert {r["model"] for r in speed["rows"]} == {"backbone", "patchcore", "dfr"}
    assert all(r["device"] == "cpu" and r["forward_img_s"] > 0 for r in speed["rows"])
    jobs = json.loads((tmp_path / "jobs.json").read_text())
    assert "device cpu" in jobs["run"]["setting"]
    assert any("batch inference" in r["measure"] and "images/s" in r["value"] for r in jobs["rows"])
    assert "Speed [" in done.stdout and "Inference job end to end [" in done.stdout
    frame_rate = json.loads((tmp_path / "frame_rate.json").read_text())
    assert [(r["network"], r["device"], r["frame"]) for r in frame_rate["rows"]] == [("enet", "cpu", "64x48")]
    assert frame_rate["rows"][0]["predict_fps"] > 0 and "Road-scene networks, frames/s at batch 1 [" in done.stdout
    rail = json.loads((tmp_path / "rail.json").read_text())
    assert [(r["pipeline"], r["protocol"]) for r in rail["rows"]] == [("rail", "synthetic_rail")]
    assert rail["rows"][0]["images_per_second"] > 0 and 0 <= rail["rows"][0]["rail_miou"] <= 1
    assert "Quality on synthetic rail scenes (120 / 80) [" in done.stdout
    recon = json.loads((tmp_path / "reconstruction_speed.json").read_text())
    assert [(r["pipeline"], r["device"]) for r in recon["rows"]] == [("ae", "cpu"), ("multilevel", "cpu")]
    assert all(r["images_per_second"] > 0 for r in recon["rows"])
    assert "Reconstruction family and multilevel, images/s at 256 px [" in done.stdout
    if report.ROOT.parent.joinpath("shared", "datasets", "mpdd_metal_plate").is_dir():
        quality = json.loads((tmp_path / "quality-mpdd.json").read_text())
        assert {r["pipeline"] for r in quality["rows"]} == {"patchcore", "dfr"}
        assert "Quality on mpdd_metal_plate [" in done.stdout


def test_gpu_script_refuses_cuda_without_a_gpu(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = dict(os.environ, DEVICE="cuda", OUT_DIR=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(report.ROOT / "bench" / "gpu.sh")], env=env, cwd=report.ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device" in done.stderr
    assert not any(tmp_path.iterdir())


def test_a_failed_or_overlong_step_is_named_and_the_others_still_run(tmp_path):
    # A Python that hangs on the speed benchmark, fails every other step, and runs the report for real.
    wrapper = tmp_path / "python"
    wrapper.write_text(f"""#!/usr/bin/env bash
case "$1" in
    bench/speed.py) sleep 60 ;;
    bench/report.py) exec {sys.executable} "$@" ;;
    *) echo "ran $1" >> {tmp_path / 'ran.txt'}; exit 3 ;;
esac
""")
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, DEVICE="cpu", OUT_DIR=str(out), PYTHON=str(wrapper), STEP_TIMEOUT="2")
    done = subprocess.run(["bash", str(report.ROOT / "bench" / "gpu.sh"), "--tiny"], env=env, cwd=report.ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert ("failed steps: speed (exit 124) quality (exit 3) jobs (exit 3) frame_rate (exit 3) rail (exit 3) "
            "reconstruction_speed (exit 3)") in done.stderr
    assert (tmp_path / "ran.txt").read_text().split() == ["ran", "bench/quality.py", "ran", "bench/jobs.py", "ran",
                                                           "bench/frame_rate.py", "ran", "bench/quality.py", "ran",
                                                           "bench/reconstruction_speed.py"]
    assert "Not measured for this code yet" in done.stdout  # the tables still print, with nothing measured

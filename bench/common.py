"""What the benchmark scripts share: where the datasets are, and JSON results that say which run made them."""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def datasets_dir() -> Path | None:
    """The shared datasets folder ($DATASETS_DIR, ../shared/datasets), or None when absent."""
    for path in (os.environ.get("DATASETS_DIR"), ROOT.parent / "shared" / "datasets"):
        if path and (Path(path) / "mpdd_metal_plate").is_dir():
            return Path(path)
    return None


def cpu_features() -> str:
    """The CPU's vector instructions as torch dispatches on them (``AVX2``, ``AVX512``), and
    ``bf16`` when it computes bfloat16 natively: the same core count runs about twice as fast
    on one kind as on the other here, so figures from different machines say which they had."""
    import torch

    from ml.components.runtime import native_bfloat16

    bf16 = native_bfloat16(torch.device("cpu"))
    return f"{torch.backends.cpu.get_cpu_capability()}{' + bf16' if bf16 else ''}"


def run_info(script: str, argv: Sequence[str]) -> dict[str, Any]:
    """Which run produced a result: command, time, commit, machine."""
    import torch

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    info = {
        "command": " ".join(["python", script, *map(shlex.quote, argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or None,
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}, {cpu_features()}), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}, "
        f"load average {os.getloadavg()[0]:.1f} at the start",
    }
    # BENCH_NOTE: what a wrapper knows about the run that the script cannot see
    # (bench/gpu_device.sh: the datasets are bench/gpu_kit.py's shrunk copies).
    if os.environ.get("BENCH_NOTE"):
        info["note"] = os.environ["BENCH_NOTE"]
    return info


def write_json(path: Path, rows: list[dict], run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "rows": rows}, indent=2) + "\n")

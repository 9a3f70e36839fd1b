"""Inference speed and memory of the feature-based pipelines, against the bare backbone.

    python bench/speed.py                 # CPU (and CUDA when present): img/s at batch 1 and 16, peak memory
    python bench/speed.py --fit-scaling   # also PatchCore fit seconds for 54, 200 and 700 images

Every measurement runs in its own process so peak RSS belongs to one model.
Throughput is the forward pass on (N, 3, 256, 256) tensors in [0, 1]
including anomaly-map generation (upsampling, PatchCore's blur), the same
scope as the peer figures in BENCHMARKS.md; ``predict`` adds conversion from
uint8 images and maps back to numpy. The bare backbone row is the full
EfficientNet-Lite0 forward pass (classifier included) in the same run: on a
shared machine only ratios measured together mean much.

Models are fitted on ``mpdd_metal_plate/train/good`` when the shared datasets
are present (so DFR's PCA latent size is the real one), else on synthetic
surfaces from :mod:`ml.data.synthetic`. Fit-scaling rows use synthetic images.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 256


def _train_images(count: int, seed: int = 0):
    from ml.data.synthetic import generate

    return generate(count, 0, size=SIZE, seed=seed)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process. ``ru_maxrss`` survives exec (it would report the
    parent's peak), so Linux's per-address-space high-water mark is read first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(folder: Path, synthetic: int = 0) -> str:
    """Fit patchcore and dfr once and save them under ``folder``; returns where the data came from.
    ``synthetic``: fit on that many synthetic images even where the shared datasets are."""
    from ml import registry

    from bench.common import datasets_dir

    datasets = None if synthetic else datasets_dir()
    if datasets is not None:
        from ml.data.datasets import MVTecDataset

        train, source = list(MVTecDataset(datasets / "mpdd_metal_plate", "train")), "mpdd_metal_plate/train/good"
    else:
        train, source = _train_images(synthetic or 54), f"{synthetic or 54} synthetic images"

    for name, config in (("patchcore", {}), ("dfr", {"max_steps": 1})):
        pipeline = registry.create(name, {**config, "device": "cpu"})
        pipeline.fit(train)
        pipeline.save(folder / f"{name}.pt")
    return source


def measure(model: str, device: str, batch: int, folder: Path, repeats: int) -> dict:
    """One row: images/s of the tensor forward pass (and of ``predict``) plus peak memory."""
    import numpy as np
    import torch

    from ml import registry
    from ml.components.backbones import load_efficientnet_lite0, normalize
    from ml.components.features import gaussian_blur, upsample

    dev = torch.device(device)
    images = [s.image for s in _train_images(batch, seed=7)]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255).to(dev)
    pipeline = None
    if model == "backbone":
        net = load_efficientnet_lite0().to(dev)

        def forward():
            return net(normalize("efficientnet_lite0", x))

    else:
        pipeline = registry.load(folder / f"{model}.pt")
        pipeline.device = dev
        pipeline.model.to(dev)
        pipeline.config.batch_size = batch
        if model == "patchcore":

            def forward():
                patch_scores, scores = pipeline.model.score_embedding(pipeline.model.embed(x).float())
                return gaussian_blur(upsample(patch_scores, SIZE), pipeline.config.blur_sigma), scores

        else:

            def forward():
                return upsample(pipeline.model(x), SIZE)

    def timed(fn) -> float:
        """Images/s from the median time of ``repeats`` calls: on a shared machine a
        neighbour's burst slows single calls, and the median ignores those."""
        times = []
        with torch.inference_mode():
            fn()  # warm-up: lazy initialisation, allocator, oneDNN kernels
            for _ in range(repeats):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        return batch / float(np.median(times))

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    row = {"model": model, "device": device, "batch": batch, "forward_img_s": timed(forward)}
    row["predict_img_s"] = timed(lambda: pipeline.predict(images)) if pipeline is not None else None
    row["peak_rss_mb"] = _peak_rss_mb()
    row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return row


def fit_time(count: int, repeats: int = 3) -> dict:
    """PatchCore fitted on ``count`` synthetic images (default config): fit seconds, and how fast
    the fitted model predicts 32 other images (median of ``repeats`` passes, batch 16)."""
    import numpy as np
    import torch

    from ml.pipelines.patchcore import PatchCorePipeline

    train = _train_images(count, seed=11)
    pipeline = PatchCorePipeline({"device": "cpu", "batch_size": 16})
    start = time.perf_counter()
    pipeline.fit(train)
    fit_s = time.perf_counter() - start
    del train
    images = [s.image for s in _train_images(32, seed=13)]
    pipeline.predict(images[:16])  # warm-up
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        pipeline.predict(images)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {
        "images": count,
        "fit_s": fit_s,
        "memory_bank": pipeline.meta["memory_bank_size"],
        "search": pipeline.meta["search"],
        "predict_img_s": len(images) / float(np.median(times)),
        # CPU seconds spread over the threads: the best an idle machine would give.
        "predict_img_s_cpu_time": len(images) * torch.get_num_threads() / float(np.median(cpu_times)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measurement {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="auto", help="cpu, cuda or auto (cpu, plus cuda when present)")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--repeats", type=int, default=0, help="timed batches per row (default: 32 at batch 1, 8 otherwise)")
    parser.add_argument("--fit-scaling", action="store_true", help="also time PatchCore fit on 54, 200 and 700 images")
    parser.add_argument("--fit-sizes", default="54,200,700")
    parser.add_argument("--synthetic", type=int, default=0, help="fit the models on this many synthetic images (default: mpdd_metal_plate when present)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows (and how they were made) to this file")
    parser.add_argument("--_measure", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--_fit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._measure:
        model, device, batch, folder, repeats = args._measure
        print(json.dumps(measure(model, device, int(batch), Path(folder), int(repeats))))
        return
    if args._fit:
        print(json.dumps(fit_time(args._fit)))
        return

    import torch

    from bench.common import run_info

    run = run_info("bench/speed.py", sys.argv[1:])  # the code as it was at the start
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else args.devices.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {os.cpu_count()} cores, "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = prepare(folder, args.synthetic)
        print(f"fitted patchcore and dfr on {source}\n", flush=True)
        rows = []
        for device in devices:
            for batch in batches:
                repeats = args.repeats or (32 if batch == 1 else 8)
                for model in ("backbone", "patchcore", "dfr"):
                    rows.append(_child(["--_measure", model, device, str(batch), str(folder), str(repeats)]))
    for row in rows:
        row["source"] = source
    print(speed_table(rows))
    fit_rows = []
    if args.fit_scaling:
        fit_rows = [_child(["--_fit", str(count)]) for count in (int(c) for c in args.fit_sizes.split(","))]
        print("\n" + fit_table(fit_rows), flush=True)
    if args.json:
        from bench.common import write_json

        write_json(args.json, rows + fit_rows, run)


def speed_table(rows: list[dict]) -> str:
    """Markdown table of the throughput rows (``model`` rows; fit rows are left out)."""
    rows = [r for r in rows if "model" in r]
    lines = [
        "| model | device | batch | forward img/s | % of backbone | predict img/s | peak RSS MB | CUDA peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = next(r for r in rows if r["model"] == "backbone" and r["device"] == row["device"] and r["batch"] == row["batch"])
        share = 100.0 * row["forward_img_s"] / base["forward_img_s"]
        predict = f"{row['predict_img_s']:.1f}" if row["predict_img_s"] else "-"
        cuda = f"{row['cuda_peak_mb']:.0f}" if row["cuda_peak_mb"] else "-"
        lines.append(f"| {row['model']} | {row['device']} | {row['batch']} | {row['forward_img_s']:.1f} | {share:.0f}% | "
                     f"{predict} | {row['peak_rss_mb']:.0f} | {cuda} |")
    return "\n".join(lines)


def fit_table(rows: list[dict]) -> str:
    """Markdown table of the PatchCore fit-scaling rows (``images`` rows)."""
    lines = ["| PatchCore (CPU) | training images | memory bank | search | fit s | predict img/s (b16) | "
             "img/s from CPU time | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if "images" in r):
        predict = f"{row['predict_img_s']:.1f}" if "predict_img_s" in row else "-"
        cpu = f"{row['predict_img_s_cpu_time']:.1f}" if "predict_img_s_cpu_time" in row else "-"
        lines.append(f"| synthetic 256x256 | {row['images']} | {row['memory_bank']} | {row.get('search', 'exact')} | "
                     f"{row['fit_s']:.1f} | {predict} | {cpu} | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

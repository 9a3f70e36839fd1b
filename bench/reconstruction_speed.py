"""Inference images/s of the reconstruction family (issue 11) at 256x256 on CPU (or a CUDA GPU).

    .venv/bin/python bench/reconstruction_speed.py --json bench/results/reconstruction_speed.json
    .venv/bin/python bench/reconstruction_speed.py --device cuda      # bench/gpu.sh step 6

Speed does not depend on what the weights learned, so each pipeline runs
``predict`` (uint8 images in, maps at input size out, SMAI's superpixels
included) with its default config and untrained weights, on real MPDD test
images when the shared datasets are present (the superpixel count depends on
the image), else on synthetic ones (also ``multilevel``, issue 10's patch
classifier). A run is the median of five timed calls after a warm-up call on
the same images; each pipeline gets five runs, and the table shows their
median and spread beside the issues' targets. On a shared machine only
numbers measured together compare (the load average is recorded).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# Issue 11: smai >= 1 image/s, every other reconstruction pipeline >= 10; issue 10: multilevel >= 2.
TARGETS = {"ae": 10.0, "riad": 10.0, "ganomaly": 10.0, "utad": 10.0, "smai": 1.0, "multilevel": 2.0}


def markdown(rows: list[dict], threads: int) -> str:
    where = f"{threads} threads" if all(r.get("device", "cpu") == "cpu" for r in rows) else "CUDA"
    lines = [
        f"| pipeline | img/s at 256 px, {where} (median) | slowest / fastest run | target | met |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        target = r.get("target")
        met = "-" if target is None else ("yes" if r["images_per_second"] >= target else "no")
        lines.append(
            f"| `{r['pipeline']}` | {r['images_per_second']:.1f} | {min(r['runs']):.1f} / {max(r['runs']):.1f} | "
            f"{'-' if target is None else f'>= {target:g}'} | {met} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="ae,ganomaly,riad,smai,utad,multilevel")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per run; a run reports their median")
    parser.add_argument("--runs", type=int, default=5, help="runs per pipeline; the table shows their median and spread")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where every pipeline runs (the targets are CPU targets)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows (and how they were made) to this file")
    args = parser.parse_args(argv)
    import torch

    from bench.common import run_info, write_json
    from ml import registry

    torch.set_num_threads(args.threads)
    run = run_info("bench/reconstruction_speed.py", argv if argv is not None else sys.argv[1:])
    root = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets")) / "mpdd_metal_plate"
    if root.is_dir():
        from ml.data import MVTecDataset

        test = MVTecDataset(root, "test")
        images = [test[i].image for i in range(0, len(test), max(1, len(test) // args.images))][: args.images]
        source = "mpdd_metal_plate test images"
    else:
        from ml.data.synthetic import generate

        images = [s.image for s in generate(args.images, 0, size=256)]
        source = "synthetic images"
    rows = []
    for name in args.pipelines.split(","):
        pipeline = registry.create(name, {"device": args.device, "batch_size": args.images})
        pipeline.model.eval()
        pipeline.fitted = True
        pipeline.predict(images)  # warm-up at the timed batch size (allocations, cached kernels)
        rates = []
        for _ in range(args.runs):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                pipeline.predict(images)
                times.append(time.perf_counter() - started)
            rates.append(len(images) / statistics.median(times))
        rows.append({
            "pipeline": name, "images_per_second": statistics.median(rates), "runs": [round(r, 2) for r in rates],
            "target": TARGETS.get(name) if args.device == "cpu" else None, "images": len(images), "source": source, "device": args.device,
            "load_average": round(os.getloadavg()[0], 1),
        })
        print(f"[{name}] {', '.join(f'{r:.1f}' for r in rates)} img/s, load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    print(markdown(rows, args.threads))
    if args.json:
        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

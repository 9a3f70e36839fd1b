"""Inference images/s of the reconstruction family (issue 11) at 256x256 on CPU.

    .venv/bin/python bench/reconstruction_speed.py [--pipelines ae,riad,smai,ganomaly,utad] [--images 8]

Speed does not depend on what the weights learned, so each pipeline runs
``predict`` (uint8 images in, maps at input size out, SMAI's superpixels
included) with its default config and untrained weights, on real MPDD test
images when the shared datasets are present (the superpixel count depends on
the image), else on synthetic ones. Reports the median of five timed calls
after a warm-up call on the same images, and the machine's load average: on a shared machine only
numbers measured together compare.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="ae,riad,smai,ganomaly,utad")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls; the median is reported")
    args = parser.parse_args()
    import torch

    from ml import registry

    torch.set_num_threads(args.threads)
    root = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets")) / "mpdd_metal_plate"
    if root.is_dir():
        from ml.data import MVTecDataset

        test = MVTecDataset(root, "test")
        images = [test[i].image for i in range(0, len(test), max(1, len(test) // args.images))][: args.images]
    else:
        from ml.data.synthetic import generate

        images = [s.image for s in generate(args.images, 0, size=256)]
    print(f"| pipeline | img/s at 256 px, {args.threads} threads | load average |\n|---|---|---|")
    for name in args.pipelines.split(","):
        pipeline = registry.create(name, {"device": "cpu", "batch_size": args.images})
        pipeline.model.eval()
        pipeline.fitted = True
        pipeline.predict(images)  # warm-up at the timed batch size (allocations, cached kernels)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            pipeline.predict(images)
            times.append(time.perf_counter() - started)
        print(f"| {name} | {len(images) / statistics.median(times):.2f} | {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

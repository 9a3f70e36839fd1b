"""Frames per second of the road-scene networks (issue 12) at CamVid's 480x360, batch 1.

    .venv/bin/python bench/frame_rate.py --json bench/results/frame_rate.json     # the CPU rows
    .venv/bin/python bench/frame_rate.py --devices cuda --json OUT.json           # on a CUDA GPU

The paper calls ERFNet real-time; issue 12 asks for >= 20 frames/s at 480x360
on a CUDA GPU with batch 1, and for the figure on 2 CPU cores. Speed does not
depend on what the weights learned, so each network runs with untrained
weights. One frame at a time, two figures per network:

- ``forward``: the network alone on a normalised tensor already on the device;
- ``predict``: the pipeline end to end on a uint8 frame (resize to the working
  size, network, the MaxLogit score, anomaly and class maps back at 480x360 on
  the CPU), what a video of road scenes costs.

Frames are CamVid val images when the shared datasets are present, else
synthetic ones of the same size. Each figure is the median of ``--frames``
timed frames after ``--warmup`` untimed ones (cuDNN picks its kernels then).
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

NETWORKS = ("erfnet", "enet", "bisenet")
# Issue 12: ERFNet >= 20 frames/s at 480x360 on a CUDA GPU with batch 1 (the paper's real-time claim).
TARGETS = {("erfnet", "cuda"): 20.0}


def frames(count: int, width: int, height: int):
    """(frames, where they come from): CamVid val images, else seeded noise of the same size."""
    import numpy as np

    root = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets")) / "camvid" / "val" / "images"
    if root.is_dir():
        import cv2

        paths = sorted(root.iterdir())[:count]
        images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
        if len(images) == count and all(im is not None for im in images):
            return [cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in images], "camvid val images"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)], "synthetic frames"


def measure(network: str, device: str, images, warmup: int) -> dict:
    import torch

    from ml import registry

    width_height = images[0].shape[1], images[0].shape[0]
    pipeline = registry.create("seg_ood", {"network": network, "device": device, "batch_size": 1, "score": "maxlogit",
                                           "image_size": width_height[0], "image_height": width_height[1]})
    pipeline.model.eval()
    pipeline.fitted = True
    dev = torch.device(device)

    def synchronise():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(call, items) -> float:
        for item in items[:warmup]:
            call(item)
        synchronise()
        times = []
        for item in items[warmup:]:
            started = time.perf_counter()
            call(item)
            synchronise()
            times.append(time.perf_counter() - started)
        return 1.0 / statistics.median(times)

    tensors = [pipeline._network_input(pipeline._images([im])) for im in images]

    def forward(x):
        with torch.inference_mode():
            pipeline.model(x)

    h, w = pipeline.working_size()
    return {
        "network": network, "device": device, "frame": f"{width_height[0]}x{width_height[1]}", "working_size": f"{w}x{h}",
        "forward_fps": timed(forward, tensors), "predict_fps": timed(lambda im: pipeline.predict([im]), images),
        "target": TARGETS.get((network, dev.type)), "frames": len(images) - warmup,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| network | device | frame (working size) | forward frames/s | predict frames/s | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = r.get("target")
        met = "-" if target is None else ("yes" if r["predict_fps"] >= target else "no")
        lines.append(f"| {r['network']} | {r['device']} | {r['frame']} ({r['working_size']}) | {r['forward_fps']:.1f} | "
                     f"{r['predict_fps']:.1f} | {'-' if target is None else f'>= {target:g}'} | {met} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--devices", default="cpu", help="comma-separated: cpu, cuda")
    parser.add_argument("--size", default="480x360", help="frame WIDTHxHEIGHT (CamVid's own: 480x360)")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per figure")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the rows (and how they were made) to this file")
    args = parser.parse_args(argv)
    import torch

    from bench.common import run_info, write_json

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    run = run_info("bench/frame_rate.py", argv if argv is not None else sys.argv[1:])
    images, source = frames(args.frames + args.warmup, width, height)
    rows = []
    for device in args.devices.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            print("bench/frame_rate.py: no CUDA device here, cuda rows skipped", file=sys.stderr)
            continue
        for network in args.networks.split(","):
            row = measure(network, device, images, args.warmup)
            row["source"] = source
            rows.append(row)
            print(f"[{network}/{device}] forward {row['forward_fps']:.1f}, predict {row['predict_fps']:.1f} frames/s", file=sys.stderr, flush=True)
    print(markdown(rows))
    if args.json:
        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

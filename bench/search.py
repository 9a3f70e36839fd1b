"""PatchCore memory-bank search: accuracy and speed of the IVF index against exact search.

    python bench/search.py                          # 700 synthetic training images + mpdd_metal_plate
    python bench/search.py --sets synthetic --train-images 200 --test-images 20
    python bench/search.py --json bench/results/search.json

Per data set PatchCore is fitted once (exact search, default config); the
same memory bank is then searched exactly and through IVF indexes with
several probe counts (built from the fitted bank as a loaded artifact would
be), and each variant predicts the test images. Rows: image AUROC, pixel
AUROC, AU-PRO, the mean relative difference of the anomaly maps from exact
search's, and ``predict`` images/s at 256x256 (median of ``--repeats``
timed passes over the test images, decoding excluded; the threads torch
uses are printed).

- ``synthetic``: ``--train-images`` normal synthetic surfaces
  (:mod:`ml.data.synthetic`, seed 11, as ``bench/speed.py --fit-scaling``),
  tested on ``--test-images`` normal + as many defective ones (seed 12).
- ``mpdd``: ``mpdd_metal_plate`` train/good -> test (skipped without the
  shared datasets).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import datasets_dir, run_info, write_json  # noqa: E402

SIZE = 256


def load_set(name: str, args):
    from ml.data.synthetic import generate

    if name == "synthetic":
        return (
            f"synthetic {args.train_images} train / {2 * args.test_images} test",
            generate(args.train_images, 0, size=SIZE, seed=11),
            generate(args.test_images, args.test_images, size=SIZE, seed=12),
        )
    root = datasets_dir()
    if name != "mpdd" or root is None:
        return None
    from ml.data import MVTecDataset

    return (
        "mpdd_metal_plate",
        list(MVTecDataset(root / "mpdd_metal_plate", "train")),
        list(MVTecDataset(root / "mpdd_metal_plate", "test")),
    )


def measure_set(label: str, train, test, args) -> list[dict]:
    import numpy as np
    import torch

    from ml.metrics import evaluate
    from ml.pipelines.patchcore import PatchCorePipeline

    fitted = PatchCorePipeline({"image_size": SIZE, "search": "exact", "device": args.device})
    started = time.perf_counter()
    fitted.fit(train)
    fit_seconds = time.perf_counter() - started
    artifact = fitted.to_artifact()
    images = [s.image for s in test]
    variants = [("exact", {"search": "exact"})] + [
        (f"ivf, {p} probes", {"search": "ivf", "search_probes": p}) for p in (int(p) for p in args.probes.split(","))
    ]
    rows, exact_maps = [], None
    for name, override in variants:
        pipeline = PatchCorePipeline.from_artifact({**artifact, "config": {**artifact["config"], **override}})
        pipeline.predict(images[: pipeline.config.batch_size])  # warm-up
        times, cpu_times = [], []
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            predictions = pipeline.predict(images)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        maps = np.asarray(predictions.maps)
        if exact_maps is None:
            exact_maps = maps
        metrics = evaluate(predictions.scores, predictions.maps, [s.mask for s in test], [s.label for s in test])
        rows.append({
            "data": label,
            "train_images": len(train),
            "test_images": len(test),
            "memory_bank": int(pipeline.model.memory_bank.shape[0]),
            "search": pipeline.meta["search"],
            "image_auroc": metrics["image_auroc"],
            "pixel_auroc": metrics["pixel_auroc"],
            "aupro": metrics["aupro"],
            "map_difference": float(np.abs(maps - exact_maps).mean() / max(float(np.abs(exact_maps).mean()), 1e-12)),
            "predict_img_s": len(images) / float(np.median(times)),
            # CPU seconds of this process spread over its threads: what an idle machine would
            # give at best; on a shared machine the wall-clock figure depends on the neighbours.
            "predict_img_s_cpu_time": len(images) * torch.get_num_threads() / float(np.median(cpu_times)),
            "batch": pipeline.config.batch_size,
            "fit_seconds": fit_seconds,
            "torch_threads": torch.get_num_threads(),
        })
        print(f"[{label}] {rows[-1]['search']}: AU-PRO {rows[-1]['aupro']:.4f}, {rows[-1]['predict_img_s']:.1f} img/s",
              file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| data | bank rows | search | image AUROC | pixel AUROC | AU-PRO | map difference | predict img/s | img/s from CPU time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = f"{r['predict_img_s_cpu_time']:.1f}" if "predict_img_s_cpu_time" in r else "-"
        lines.append(
            f"| {r['data']} | {r['memory_bank']} | {r['search']} | {r['image_auroc']:.3f} | {r['pixel_auroc']:.3f} | "
            f"{r['aupro']:.3f} | {100 * r['map_difference']:.2f}% | {r['predict_img_s']:.1f} | {cpu} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="synthetic,mpdd", help="comma-separated: synthetic, mpdd")
    parser.add_argument("--train-images", type=int, default=700)
    parser.add_argument("--test-images", type=int, default=30, help="normal test images (as many defective ones)")
    parser.add_argument("--probes", default="8,16", help="IVF probe counts to compare with exact search")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="write the rows (and how they were made) to this file")
    args = parser.parse_args(argv)
    run = run_info("bench/search.py", argv if argv is not None else sys.argv[1:])  # the code as it was at the start

    rows = []
    for name in args.sets.split(","):
        loaded = load_set(name, args)
        if loaded is None:
            print(f"[{name}] skipped: no such set here", file=sys.stderr)
            continue
        rows += measure_set(*loaded, args)
    print(markdown(rows))
    if args.json:
        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

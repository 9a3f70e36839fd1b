"""utad: the levels' error maps combined by product (thesis eq. 4.21) against sum (eq. 4.19).

The combination only acts at inference, so one trained model is evaluated both
ways on the same protocol as bench/quality.py (default ``mpdd``)::

    .venv/bin/python bench/utad_combine.py --config '{"max_seconds": 300}' --json bench/results/utad_combine.json

(``max_seconds`` bounds each of the two training stages.) Each combination is
evaluated in float32 and, where the machine computes bfloat16 natively, in
bfloat16 (the pipeline's default there), so the precision's cost is measured
on the same weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import run_info, write_json  # noqa: E402
from bench.quality import PROTOCOLS, _progress_printer, default_datasets_dir  # noqa: E402
from ml import registry  # noqa: E402
from ml.components.runtime import native_bfloat16  # noqa: E402
from ml.metrics import evaluate  # noqa: E402


# The thesis' per-image means of Table 5.5 (accuracy, F1, IoU, AUROC), as ml.metrics names them.
THESIS_MEANS = ("mean_accuracy", "mean_dice", "mean_iou", "mean_auroc")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="mpdd")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--config", default="{}", help="utad config overrides as JSON")
    parser.add_argument("--json", type=Path, default=None, help="write the rows (and how they were made) to this file")
    parser.add_argument("--save", type=Path, default=None, help="also save the trained model here")
    args = parser.parse_args()
    run = run_info("bench/utad_combine.py", sys.argv[1:])
    protocol = next(p for p in PROTOCOLS if p.key == args.protocol)
    train, test = protocol.load(default_datasets_dir())
    pipeline = registry.create("utad", json.loads(args.config), args.preset)
    started = time.perf_counter()
    pipeline.fit(list(train), None, _progress_printer(f"{protocol.key}/utad", False))
    fit_seconds = time.perf_counter() - started
    if args.save:
        pipeline.save(args.save)
    samples = list(test)
    rows = []
    # Inference precision: float32, and bfloat16 where this machine computes it natively (the
    # pipeline's default there): one trained model, so the difference is the precision's alone.
    precisions = ["float32"] + (["bfloat16"] if native_bfloat16(pipeline.device) else [])
    print("| combine | precision | image AUROC | pixel AUROC | AU-PRO | pixel F1-max | thesis accuracy / F1 / IoU / AUROC | fit s | img/s |\n|---|---|---|---|---|---|---|---|---|")
    for combine in ("product", "sum"):
        for precision in precisions:
            pipeline.config.combine = combine
            pipeline.config.mixed_precision = precision == "bfloat16"
            pipeline.predict([s.image for s in samples[:2]])  # warm-up: the first call pays for kernel setup
            started = time.perf_counter()
            predictions = pipeline.predict([s.image for s in samples])
            rate = len(samples) / (time.perf_counter() - started)
            m = evaluate(predictions.scores, predictions.maps, [s.mask for s in samples], [s.label for s in samples], threshold=None)
            thesis = " / ".join(f"{m[k]:.3f}" if m.get(k) is not None else "-" for k in THESIS_MEANS)
            print(f"| {combine} | {precision} | {m['image_auroc']:.3f} | {m['pixel_auroc']:.3f} | {m['aupro']:.3f} | {m['pixel_f1_max']:.3f} | {thesis} | {fit_seconds:.0f} | {rate:.1f} |", flush=True)
            rows.append({
                "combine": combine, "precision": precision, "dataset": protocol.dataset,
                **{k: m[k] for k in ("image_auroc", "pixel_auroc", "aupro", "pixel_f1_max")},
                # Table 5.5's own measures: the thesis' per-image means (eq. 5.1-5.6), here at each
                # combination's F1-optimal pixel threshold (the thesis fixed 0.5 or 0.3 by eye).
                **{k: m.get(k) for k in THESIS_MEANS},
                "fit_seconds": fit_seconds, "images_per_second": rate,
                "impression_steps": pipeline.meta.get("impression_training", {}).get("steps"),
                "style_steps": pipeline.meta.get("training", {}).get("steps"),
                "train_images": len(train), "test_images": len(samples),
            })
    if args.json:
        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score a saved rail model on held-back synthetic scenes: the split settings are chosen on.

    .venv/bin/python bench/quality.py --pipelines rail --datasets-only synthetic_rail --save-models /tmp/rail
    .venv/bin/python bench/rail_heldback.py /tmp/rail/synthetic_rail-rail.pt --seed 4 --scenes 100
    .venv/bin/python bench/rail_heldback.py MODEL --refit-patch-stage --set patch_resolution=working

The benchmark's test scenes are ``generate_rail(40, 40, seed=1)`` and its training scenes seed 0;
held-back scenes come from any other seed (the README's tables use 2 and 4), so a setting is never
chosen by the test scenes' scores. ``--set KEY=VALUE`` changes a config field before scoring; a
field that changes what stage 3 learns (the patch crops, the autoencoder's budget, the score)
needs ``--refit-patch-stage``, which refits the autoencoder, the feature bank and the normal range
on the model's own training split of the seed-0 scenes, keeping its stage-1 segmenter.
Prints image AUROC, pixel AUROC, AU-PRO, box recall and the normal scenes with a box.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _value(field: dataclasses.Field, text: str):
    kind = type(field.default)  # the config's annotations are strings (postponed evaluation)
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"--set {field.name}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    return kind(text) if kind in (int, float) else text


def apply_settings(pipeline, settings: list[str]) -> None:
    """``KEY=VALUE`` pairs onto the pipeline's config, validated as a training form would."""
    from ml import registry

    fields = {f.name: f for f in dataclasses.fields(pipeline.config)}
    changes = {}
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of the rail config's fields")
        changes[key] = _value(fields[key], text)
    config = registry.validate_config("rail", {**pipeline.config.to_dict(), **changes})
    pipeline.config = type(pipeline.config)(**config)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a rail model file (bench/quality.py --save-models writes one)")
    parser.add_argument("--seed", type=int, default=2, help="held-back scenes' seed (not 0, the training scenes, nor 1, the test scenes)")
    parser.add_argument("--scenes", type=int, default=40, help="normal scenes, and as many with obstacles")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--refit-patch-stage", action="store_true", help="refit stage 3 (autoencoder, feature bank, range) first")
    parser.add_argument("--training-scenes", type=int, default=120, help="the seed-0 training scenes the model learnt from")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.seed in (0, 1):
        raise SystemExit("--seed 0 and 1 are the benchmark's training and test scenes; held-back scenes need another seed")
    import torch

    from bench.quality import rail_metrics
    from ml import registry
    from ml.components.runtime import seed_everything
    from ml.data.rail_synthetic import generate_rail
    from ml.data.splits import hold_out_validation
    from ml.metrics import evaluate
    from ml.pipelines.rail.pipeline import _usable, patch_stage_seed

    torch.set_num_threads(args.threads)
    pipeline = registry.load(args.model)
    if pipeline.name != "rail":
        raise SystemExit(f"{args.model} holds a {pipeline.name!r} model, not a rail one")
    apply_settings(pipeline, args.settings)
    if args.refit_patch_stage:
        cfg = pipeline.config
        train, val, source = hold_out_validation(
            generate_rail(args.training_scenes, 0, seed=0), None, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=_usable
        )
        started = time.perf_counter()
        pipeline._fit_patch_stage(train, val, source, seed_everything(patch_stage_seed(cfg.seed)), lambda *a: None)
        print(f"stage 3 refitted in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    samples = generate_rail(args.scenes, args.scenes, seed=args.seed)
    predictions = pipeline.predict([s.image for s in samples])
    metrics = evaluate(predictions.scores, predictions.maps, [s.mask for s in samples], [s.label for s in samples], threshold=pipeline.threshold)
    metrics.update(rail_metrics(pipeline, samples, predictions))
    false = sum(bool(extra["boxes"]) for sample, extra in zip(samples, predictions.extras) if not sample.label)
    settings = ", ".join(args.settings) or "as saved"
    print(
        f"{settings}: image AUROC {metrics['image_auroc']:.3f}, pixel AUROC {metrics['pixel_auroc']:.3f}, "
        f"AU-PRO {metrics['aupro']:.3f}, box recall {metrics['box_recall']:.2f}, normal scenes with a box {false}/{args.scenes}, "
        f"rail mIoU {metrics['rail_miou']:.3f} (held-back seed {args.seed}, {args.scenes} + {args.scenes} scenes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

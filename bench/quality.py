"""Quality benchmark: train and evaluate every registered pipeline on the shared real datasets.

Usage (from the repository root)::

    .venv/bin/python bench/quality.py                       # everything that fits
    .venv/bin/python bench/quality.py --pipelines unet --datasets-only mpdd_supervised --max-steps 600
    .venv/bin/python bench/quality.py --pipelines dfr --preset paper
    .venv/bin/python bench/quality.py --json var/quality.json

Protocols (../shared/datasets/README.md), all at a working size of 256x256;
images are read at their own resolution and every metric is computed at the
resolution of the ground-truth masks (maps come back from ``predict`` at input
resolution):

- ``mpdd``: ``mpdd_metal_plate`` unsupervised; fit on the 54 ``train/good``
  images, evaluate on ``test/`` (26 good + 21 defective). Unsupervised pipelines.
- ``mpdd_supervised``: the 60 annotated defective plates of
  ``mpdd_metal_plate_defective_train`` plus the 54 normal ``train/good`` images;
  evaluate on ``mpdd_metal_plate/test``. Supervised pipelines.
- ``car_damage_via``: polygons rasterised to one damage mask per image; train
  on ``train/`` (the 14 images without regions are unlabeled, not normal, so
  they are left out of training), evaluate on ``val/``. Supervised pipelines.
- ``crackforest``: no official split; the first 80 images by file name train,
  the remaining 38 evaluate. Supervised pipelines.
- ``synthetic_rail``: generated, no dataset folder needed (ml/data/rail_synthetic.py):
  120 normal 512x256 rail scenes with rail masks (seed 0) train; 40 normal and
  40 with obstacles (seed 1) evaluate. Pipelines that learn from rail masks
  (``rail``). Extra columns: rail mIoU (mean of rail and background IoU, the
  paper's Table I measure) and rail IoU of stage 1 on the test scenes, box
  recall (share of obstacles touched by a box at the threshold) and frames/s
  end to end on this machine's device.

No validation set is handed to ``fit``: pipelines that train weights hold back
their own validation split from the training images (the shared training loop:
stratified, seeded, 15%), which decides early stopping and calibrates the
threshold; thresholded metrics (IoU, Dice, accuracy...) use that threshold,
never an oracle chosen on the test set.
Fit seconds are wall time of ``fit``; inference images/s is wall time of
``predict`` over the test images (reading excluded).
A unet with ``input = "image+residual"`` (``--config '{"unet": {"input":
"image+residual"}}'``) gets its residual from a ``vae`` fitted first on the
protocol's training images (``--config`` key ``vae`` tunes it); its row says
so and its fit seconds include the vae's.

Prints one markdown table; ``--json OUT`` also writes the rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

# Before torch loads OpenMP: on a shared machine, spinning OpenMP workers make
# training 10-20x slower than sleeping ones (measured on the 2-core dev box).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ml import registry  # noqa: E402
from ml.base import Sample  # noqa: E402

# Metric columns in table order (keys of ml.metrics.METRICS).
COLUMNS = [
    "rail_miou",
    "rail_iou",
    "image_auroc",
    "pixel_auroc",
    "aupro",
    "pixel_aupr",
    "pixel_f1_max",
    "pixel_fpr_at_95_tpr",
    "image_aupr",
    "image_f1_max",
    "threshold",
    "pixel_iou",
    "pixel_dice",
    "pixel_precision",
    "pixel_recall",
    "pixel_accuracy",
    "image_accuracy",
    "miou",
    "mean_accuracy",
    "mean_dice",
    "mean_iou",
    "mean_auroc",
    "box_recall",
]


@dataclasses.dataclass
class Protocol:
    key: str
    dataset: str  # label shown in the table
    supervision: str
    folders: tuple[str, ...]  # needed under the datasets root
    load: Callable[[Path], tuple[Sequence[Sample], Sequence[Sample]]]
    # Only pipelines that need these label-class masks run it (and those that need them run nothing else).
    class_masks: tuple[str, ...] = ()
    generated: bool = False  # needs no dataset folder


def _mpdd(root: Path):
    from ml.data import MVTecDataset

    return MVTecDataset(root / "mpdd_metal_plate", "train"), MVTecDataset(root / "mpdd_metal_plate", "test")


def _mpdd_supervised(root: Path):
    from ml.data import ConcatSamples, ImageMaskDataset, MVTecDataset

    train = ConcatSamples(
        [MVTecDataset(root / "mpdd_metal_plate", "train"), ImageMaskDataset(root / "mpdd_metal_plate_defective_train")]
    )
    return train, MVTecDataset(root / "mpdd_metal_plate", "test")


def _car_damage(root: Path):
    from ml.data import PolygonDataset

    train = PolygonDataset(root / "car_damage_via" / "train", unannotated="skip")
    # Images the VIA file lists without regions would read as normal (label 0);
    # the README says they are not known to be damage-free: keep annotated ones only.
    train = train.subset(1)
    return train, PolygonDataset(root / "car_damage_via" / "val")


def _crackforest(root: Path):
    from ml.data import ImageMaskDataset

    data = ImageMaskDataset(root / "crackforest")
    return data[:80], data[80:]


def _synthetic_rail(root: Path):
    from ml.data.rail_synthetic import generate_rail

    return generate_rail(120, 0, seed=0), generate_rail(40, 40, seed=1)


def rail_metrics(pipeline, test_samples: Sequence[Sample], predictions) -> dict:
    """Stage 1's rail mIoU / rail IoU on the test scenes, and the share of obstacles a box touches."""
    import numpy as np

    from ml.pipelines.rail.pipeline import iou_pair, rail_mask_of

    predicted = np.concatenate([(e["rail_mask"] > 0).ravel() for e in predictions.extras])
    truth = np.concatenate([rail_mask_of(s).ravel() for s in test_samples])
    rail, background = iou_pair(predicted, truth)
    found = total = 0
    for sample, extra in zip(test_samples, predictions.extras):
        if sample.label != 1:
            continue
        total += 1
        hit = np.zeros(sample.mask.shape, bool)
        for box in extra["boxes"]:
            x0, y0 = int(box["x"]), int(box["y"])
            hit[y0 : int(np.ceil(box["y"] + box["height"])), x0 : int(np.ceil(box["x"] + box["width"]))] = True
        found += bool((hit & (sample.mask > 0)).any())
    return {"rail_miou": (rail + background) / 2, "rail_iou": rail, "box_recall": found / total if total else float("nan")}


def _camvid(root: Path):
    from ml.data.semantic import SemanticFolder

    unknown = (9, 10)  # Pedestrian and Bicyclist: the open-set protocol's unknown objects
    return SemanticFolder(root / "camvid" / "train", unknown), SemanticFolder(root / "camvid" / "val", unknown)


PROTOCOLS = [
    Protocol("mpdd", "mpdd_metal_plate", "unsupervised", ("mpdd_metal_plate",), _mpdd),
    Protocol(
        "mpdd_supervised",
        "mpdd_metal_plate + defective_train",
        "supervised",
        ("mpdd_metal_plate", "mpdd_metal_plate_defective_train"),
        _mpdd_supervised,
    ),
    Protocol("car_damage_via", "car_damage_via", "supervised", ("car_damage_via",), _car_damage),
    Protocol("crackforest", "crackforest (80 / 38)", "supervised", ("crackforest",), _crackforest),
    Protocol("camvid_open_set", "camvid (open set)", "semantic", ("camvid",), _camvid),
    Protocol("synthetic_rail", "synthetic rail scenes (120 / 80)", "unsupervised", (), _synthetic_rail, ("rail",), True),
]

# Settings of the rail pipeline that fit the 2-core CPU box (its defaults are GPU work): working
# size 128x256 and the paper's patch schedule halved with it (10 -> 7 px, 1 px every 4 patches).
# The patch autoencoder keeps the pipeline's 1500 steps: with 300 its held-back validation error
# was still falling at the budget's end (best at step 275, 1.26); with 1500, early stopping ended
# the benchmark run at step 900 (best at step 750, 0.95). The shortest rail kept is halved too (10
# centre-line pixels): at 20, a rail that an obstacle cuts short was dropped with its patches (held-back
# image AUROC 0.928 -> 0.949 on seed 4, 0.957 -> 0.959 on seed 5, 0.979 -> 0.978 on seed 2, one model).
# No time bound: a bound of seconds ends stage 1 at whatever step the machine reached (555-600 of 600
# on the AVX512 CPU, 393 on an AVX2 one, whose best weights then came from step 250 instead of 500), so
# the same seed gave another model on another machine; step budgets alone keep a run repeatable.
RAIL_CPU_RECIPE = {
    "image_size": 128, "max_steps": 600, "max_seconds": None, "warmup_steps": 10, "val_every": 25,
    "patch_max": 10, "patch_min": 7, "patch_step": 1, "min_rail_points": 10, "ae_steps": 1500, "ae_batch_size": 64,
}


# The reconstruction family (issue 11) trains from scratch; on a CPU their default budgets
# take hours, so each training is bounded in seconds there (the shared loop's
# max_seconds; a row's fit time shows it). On CUDA they run their full budgets.
CPU_TRAINING_SECONDS = {"ae": 600, "riad": 600, "smai": 600, "ganomaly": 600, "utad": 600}


def default_datasets_dir() -> Path:
    env = os.environ.get("DATASETS_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "datasets").resolve()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _progress_printer(label: str, quiet: bool):
    last = [0.0]

    def progress(stage: str, fraction: float, metrics: dict | None = None) -> None:
        now = time.monotonic()
        if quiet or (now - last[0] < 10 and fraction < 1.0):
            return
        last[0] = now
        shown = ", ".join(f"{k} {v:.4g}" for k, v in (metrics or {}).items() if k in ("step", "epoch", "loss") or k.startswith("val_"))
        print(f"  [{label}] {stage} {fraction * 100:5.1f}% {shown}", file=sys.stderr, flush=True)

    return progress


def run_one(
    protocol: Protocol,
    name: str,
    root: Path,
    config: dict,
    quiet: bool = False,
    load: Path | None = None,
    save_dir: Path | None = None,
) -> dict:
    from ml.metrics import evaluate

    train, test = protocol.load(root)
    label = f"{protocol.key}/{name}"
    if load is not None:
        # A model trained earlier (another run, another machine): evaluate only;
        # its fit time is the one recorded in the artifact.
        pipeline = registry.load(load)
        if pipeline.name != name:
            raise SystemExit(f"{load} holds a {pipeline.name!r} model, not {name!r}")
        fit_seconds = float(pipeline.meta.get("fit_seconds", float("nan")))
        print(f"[{label}] loaded {load}", file=sys.stderr, flush=True)
    else:
        pipeline = registry.create(name, config)
        print(f"[{label}] fit on {len(train)} images, config {json.dumps(config)}", file=sys.stderr, flush=True)
        train_samples = list(train)
        started = time.perf_counter()
        pipeline.fit(train_samples, None, _progress_printer(label, quiet))
        fit_seconds = time.perf_counter() - started
        del train_samples
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            pipeline.save(save_dir / f"{protocol.key}-{name}.pt")

    if protocol.supervision == "semantic":
        return run_semantic(protocol, pipeline, test, fit_seconds)
    test_samples = list(test)
    images = [s.image for s in test_samples]
    started = time.perf_counter()
    predictions = pipeline.predict(images)
    predict_seconds = time.perf_counter() - started
    metrics = evaluate(
        predictions.scores,
        predictions.maps,
        [s.mask for s in test_samples],
        [s.label for s in test_samples],
        threshold=pipeline.threshold,
    )
    if "rail" in protocol.class_masks:
        metrics.update(rail_metrics(pipeline, test_samples, predictions))
    row = {
        "dataset": protocol.dataset,
        "protocol": protocol.key,
        "pipeline": name,
        "train_images": pipeline.meta.get("train_images", len(train)),
        "test_images": len(test_samples),
        **metrics,
        "fit_seconds": fit_seconds,
        "images_per_second": len(images) / predict_seconds if predict_seconds > 0 else float("nan"),
        "config": pipeline.config.to_dict(),
        "training": {k: v for k, v in (pipeline.meta.get("training") or {}).items() if k != "curves"},
    }
    print(
        f"[{label}] fit {fit_seconds:.0f} s, pixel F1-max {metrics.get('pixel_f1_max', float('nan')):.4f}, "
        f"image AUROC {metrics.get('image_auroc', float('nan')):.4f}",
        file=sys.stderr,
        flush=True,
    )
    return row


def _fit_residual_vae(protocol: Protocol, root: Path, args, vae_overrides: dict) -> tuple[str, float]:
    """Fit the ``vae`` whose residual a unet with ``input = "image+residual"`` reads (thesis 4.1.1) on
    this protocol's training images, all taken as the "canonical" set: the thesis trained its VAE on
    600k vehicle images, these sets have no separate normal images (car_damage_via has none).
    Returns the saved artifact's path and the fit seconds."""
    import tempfile

    from ml.base import Sample

    train, _ = protocol.load(root)
    samples = [Sample(image=s.image, label=0, name=s.name) for s in train]
    device = {"device": args.device} if args.device else {}
    vae = registry.create("vae", {"image_size": args.image_size, **device, **vae_overrides}, args.preset)
    print(f"[{protocol.key}/vae for the residual] fit on {len(samples)} images", file=sys.stderr, flush=True)
    started = time.perf_counter()
    vae.fit(samples, None, _progress_printer(f"{protocol.key}/vae", args.quiet))
    seconds = time.perf_counter() - started
    folder = args.save_models or Path(tempfile.mkdtemp(prefix="residual-vae-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{protocol.key}-vae-residual.pt"
    vae.save(path)
    return str(path), seconds


SEMANTIC_SCORES = ("msp", "maxlogit", "max_entropy", "msp_temperature", "void")


def run_semantic(protocol: Protocol, pipeline, test, fit_seconds: float) -> list[dict]:
    """The road-scene paper's table for one trained network: mIoU over the known classes and, per
    anomaly score the model can give, AuPRC and FPR95 with the unknown classes' pixels as positives
    and every other labelled pixel as negatives (void left out)."""
    import numpy as np

    from ml.metrics.ood import class_iou, ood_pixel_metrics
    from ml.metrics.segmentation import confusion_matrix

    cfg = pipeline.config
    known = cfg.known_classes()
    scores = [s for s in SEMANTIC_SCORES if s != "void" or cfg.void_class]
    per_score: dict[str, list] = {s: [] for s in scores}
    confusion = np.zeros((cfg.num_classes, cfg.num_classes), np.int64)
    seconds, count = 0.0, 0
    for start in range(0, len(test), cfg.batch_size):
        batch = [test[i] for i in range(start, min(len(test), start + cfg.batch_size))]
        images = [s.image for s in batch]
        for score in scores:
            pipeline.use_score(score)
            started = time.perf_counter()
            out = pipeline.predict(images)
            if score == "maxlogit":
                seconds += time.perf_counter() - started
                count += len(images)
                for s, predicted in zip(batch, out.class_maps):
                    labelled = s.classes < cfg.num_classes
                    confusion += confusion_matrix(predicted[labelled], s.classes[labelled], cfg.num_classes)
            for s, m in zip(batch, out.maps):
                counted = s.classes != cfg.void_index
                per_score[score].append((np.asarray(m), np.isin(s.classes, cfg.unknown_classes), counted))
    ious = class_iou(confusion[np.ix_(known, known)])
    miou = float(np.mean([v for v in ious if v is not None]))
    rows = []
    for score in scores:
        metrics = ood_pixel_metrics(per_score[score])
        rows.append({
            "dataset": protocol.dataset, "protocol": protocol.key, "pipeline": f"seg_ood/{cfg.network}",
            "score": score, "train_images": pipeline.meta.get("train_images"), "test_images": len(test),
            "miou": miou, "class_iou": dict(zip([str(k) for k in known], ious)),
            "anomaly_auprc": metrics["auprc"], "anomaly_fpr95": metrics["fpr95"],
            "temperature": pipeline.temperature if score == "msp_temperature" else None,
            "fit_seconds": fit_seconds, "images_per_second": count / seconds if seconds > 0 else float("nan"),
            "resolution": f"{pipeline.working_size()[1]}x{pipeline.working_size()[0]}",
            "config": cfg.to_dict(),
            "training": {k: v for k, v in (pipeline.meta.get("training") or {}).items() if k != "curves"},
        })
        print(f"[{protocol.key}/{cfg.network}/{score}] mIoU {miou:.3f} AuPRC {metrics['auprc']} FPR95 {metrics['fpr95']}", file=sys.stderr, flush=True)
    pipeline.use_score(cfg.score)
    return rows


def semantic_table(rows: list[dict], runs: Sequence[int] | None = None) -> str:
    """One line per network x score; ``runs``: the provenance number of each row (a "run" column)."""
    header = ["dataset", "network", "score", "resolution", "mIoU (known)", "AuPRC", "FPR95", "fit s", "img/s"] + (["run"] if runs else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for i, r in enumerate(rows):
        network = r["pipeline"].split("/")[-1] + (" (void class)" if (r.get("config") or {}).get("void_class") else "")
        lines.append("| " + " | ".join([
            r["dataset"], network, r["score"], r["resolution"], fmt(r["miou"]),
            fmt(r["anomaly_auprc"]), fmt(r["anomaly_fpr95"]), f"{r['fit_seconds']:.0f}", f"{r['images_per_second']:.1f}",
        ] + ([f"[{runs[i]}]"] if runs else [])) + " |")
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    header = ["dataset", "pipeline", "train", "test", *columns, "fit s", "img/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["dataset"], r["pipeline"], str(r["train_images"]), str(r["test_images"])]
        cells += [f"{r[c]:.3f}" if c in r else "-" for c in columns]
        cells += [f"{r['fit_seconds']:.0f}", f"{r['images_per_second']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=None, help="datasets root (default $DATASETS_DIR or ../shared/datasets)")
    parser.add_argument("--pipelines", default="", help="comma-separated pipeline names (default: every registered one)")
    parser.add_argument(
        "--datasets-only", default="", help=f"comma-separated protocols: {', '.join(p.key for p in PROTOCOLS)} (default: all)"
    )
    parser.add_argument("--preset", default=None, help="named preset of every pipeline run (default, paper, fast); default: default")
    parser.add_argument("--max-steps", type=int, default=None, help="override the step budget of pipelines that train weights")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument(
        "--config", default="{}", help='per-pipeline config overrides as JSON, e.g. \'{"unet": {"base_channels": 32}}\''
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="run every pipeline there (default: each config's own)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows (and how they were made) to this JSON file")
    parser.add_argument("--save-models", type=Path, default=None, help="save each fitted model as DIR/<protocol>-<pipeline>.pt")
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="PROTOCOL:PIPELINE=PATH",
        help="evaluate this saved model instead of fitting (repeatable), e.g. mpdd_supervised:unet=model.pt",
    )
    parser.add_argument("--quiet", action="store_true", help="no training progress on stderr")
    args = parser.parse_args(argv)

    from bench.common import run_info

    run = run_info("bench/quality.py", sys.argv[1:] if argv is None else list(argv))  # the code as it was at the start
    root = args.datasets or default_datasets_dir()
    if not root.is_dir():
        print(f"datasets folder {root} not found: only generated protocols run (set DATASETS_DIR or --datasets)", file=sys.stderr)
    names = [n for n in args.pipelines.split(",") if n] or registry.names()
    for name in names:
        registry.describe(name)  # unknown names fail here, listing the known ones
    wanted = [p for p in args.datasets_only.split(",") if p]
    unknown = sorted(set(wanted) - {p.key for p in PROTOCOLS})
    if unknown:
        parser.error(f"unknown protocol {unknown[0]!r}; known: {', '.join(p.key for p in PROTOCOLS)}")
    overrides = json.loads(args.config)
    loads = {}
    for spec in args.load:
        key, _, path = spec.partition("=")
        if ":" not in key or not path:
            parser.error(f"--load expects PROTOCOL:PIPELINE=PATH, got {spec!r}")
        loads[key] = Path(path)

    rows = []
    for protocol in PROTOCOLS:
        if wanted and protocol.key not in wanted:
            continue
        missing = [f for f in protocol.folders if not (root / f).is_dir()]
        if missing and not protocol.generated:
            print(f"[{protocol.key}] skipped: {', '.join(missing)} not under {root}", file=sys.stderr)
            continue
        for name in names:
            info = registry.describe(name)
            if info["supervision"] != protocol.supervision:
                continue
            if set(info.get("required_class_masks", ())) != set(protocol.class_masks):
                continue
            properties = info["config_schema"]["properties"]
            config = {"image_size": args.image_size}
            if name == "rail" and not (args.device == "cuda" or (args.device in (None, "auto") and _has_cuda())):
                config.update(RAIL_CPU_RECIPE)  # on a GPU the pipeline's defaults: 256x512, its full budgets
            if args.device:
                config["device"] = args.device
            if name in CPU_TRAINING_SECONDS and not _has_cuda():
                config["max_seconds"] = CPU_TRAINING_SECONDS[name]
            if args.max_steps is not None and "max_steps" in properties:
                config["max_steps"] = args.max_steps
            config.update(overrides.get(name, {}))
            config = registry.validate_config(name, config, args.preset)
            load = loads.get(f"{protocol.key}:{name}")
            residual_seconds = 0.0
            if config.get("input") == "image+residual" and not config.get("vae_model") and load is None:
                config["vae_model"], residual_seconds = _fit_residual_vae(protocol, root, args, overrides.get("vae", {}))
            result = run_one(protocol, name, root, config, args.quiet, load, args.save_models)
            if config.get("input") == "image+residual" and isinstance(result, dict):
                result["pipeline"] = f"{name} (image+residual)"
                result["fit_seconds"] += residual_seconds  # the vae is part of what this model cost to train
            rows.extend(result if isinstance(result, list) else [result])

    semantic = [r for r in rows if "score" in r]
    if semantic:
        print(semantic_table(semantic))
    print(markdown_table([r for r in rows if "score" not in r]))
    if args.json:
        from bench.common import write_json

        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

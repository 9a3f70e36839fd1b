"""Command line: train, evaluate and predict on folders, list pipelines.

::

    python -m ml pipelines [--json]
    python -m ml train --pipeline NAME --data FOLDER [--data FOLDER ...] [--val FOLDER]
                       [--preset default|paper|fast] [--config JSON_OR_FILE] --out MODEL
    python -m ml evaluate --model MODEL --data FOLDER [--json OUT] [--threshold X | --oracle-threshold]
    python -m ml predict --model MODEL --images PATH [PATH ...] --out DIR
    python -m ml export --model MODEL --format onnx|torchscript --out FILE
    python -m ml synthetic --out FOLDER [--train N] [--normal N] [--anomalous N] [--size PX] [--kind KIND]

Folders are recognised by layout (ml.data.open_dataset): MVTec AD (train uses
``train/``, evaluate ``test/``), ``images/`` + ``masks/``, or images with a
VIA / COCO / LabelMe file. ``predict`` also takes a model written by
``export`` (ONNX through onnxruntime, or TorchScript). Exit status 0 on success, 2 on bad input (the
message says what was wrong).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ml.config import ConfigError
from ml.formats import FormatError


class CliError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CliError, ConfigError, FormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:  # UnknownPipeline carries the list of known names
        from ml.registry import UnknownPipeline

        if isinstance(exc, UnknownPipeline):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description="Visual anomaly inspection: train, evaluate, predict.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("pipelines", help="list pipelines with their config schema")
    p.add_argument("--json", action="store_true", help="print the full descriptions as JSON")
    p.set_defaults(handler=cmd_pipelines)

    p = commands.add_parser("train", help="fit a pipeline and save the model")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--data", required=True, action="append", type=Path, help="training folder (repeatable)")
    p.add_argument("--val", type=Path, help="validation folder (early stopping and threshold calibration; default: held back from --data)")
    p.add_argument("--preset", help="named starting configuration: default, paper or fast (see `pipelines`)")
    p.add_argument("--config", help="config as JSON text or a path to a JSON file (applied on top of the preset)")
    p.add_argument("--out", required=True, type=Path, help="model file to write")
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("evaluate", help="every metric of a model on a labelled folder")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--json", type=Path, help="also write metrics and curves to this JSON file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="raw threshold for the thresholded metrics (default: the model's)")
    group.add_argument("--oracle-threshold", action="store_true", help="use the F1-optimal threshold of this data")
    p.add_argument("--batch-size", type=int, help="images per predict call (default: the model's)")
    p.set_defaults(handler=cmd_evaluate)

    p = commands.add_parser("predict", help="heatmaps and overlays for images")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--images", required=True, nargs="+", type=Path, help="image files or folders")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--batch-size", type=int)
    p.set_defaults(handler=cmd_predict)

    p = commands.add_parser("export", help="write a model as ONNX or TorchScript for use outside the app")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--format", required=True, help="onnx or torchscript")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("synthetic", help="write a synthetic data set in MVTec AD layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--train", type=int, default=16)
    p.add_argument("--normal", type=int, default=6)
    p.add_argument("--anomalous", type=int, default=6)
    p.add_argument("--size", type=int, default=128, help="image side (surfaces) or height (rail scenes: width = 2 x height)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", default="texture", help="a surface (texture, metal, woven, grain) or 'rail' (rail scenes with rail masks)")
    p.set_defaults(handler=cmd_synthetic)
    return parser


# --- commands ----------------------------------------------------------------------------

def cmd_pipelines(args: argparse.Namespace) -> int:
    from ml import registry

    described, missing = [], []
    for name in registry.names():
        try:
            described.append(registry.describe(name))
        except ImportError as exc:  # a pipeline package that is absent or broken must not hide the others
            missing.append(f"{name}: not available ({exc})")
    for line in missing:
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for item in described:
        print(f"{item['name']}  ({item['supervision']})")
        print(f"  {item['description']}")
        for preset, entry in item.get("presets", {}).items():
            print(f"  preset {preset}: {entry['description']} {json.dumps(entry['config']) if entry['config'] else ''}".rstrip())
        for key, prop in item["config_schema"]["properties"].items():
            kind = "|".join(map(str, prop["enum"])) if "enum" in prop else prop.get("type", "")
            print(f"    {key:24} {str(kind):28} default {json.dumps(prop.get('default'))}  {prop.get('description', '')}")
        print()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ml import registry
    from ml.data import ConcatSamples, open_dataset

    config = _read_config(args.config)
    pipeline = registry.create(args.pipeline, config, preset=args.preset)
    parts = [open_dataset(folder, split="train") for folder in args.data]
    train = parts[0] if len(parts) == 1 else ConcatSamples(parts)
    val = open_dataset(args.val, split="test") if args.val else None
    print(f"training {args.pipeline} on {len(train)} images" + (f", validating on {len(val)}" if val is not None else ""))
    started = time.perf_counter()
    with _ProgressBars() as progress:
        pipeline.fit(train, val, progress)
    pipeline.meta.setdefault("fit_seconds", round(time.perf_counter() - started, 2))
    training = pipeline.meta.get("training")
    if training:
        best = "" if training["best_value"] is None else f", best {training['measure']} {training['best_value']:.4g} at step {training['best_step']}"
        print(f"trained {training['steps']} steps ({training['epochs']:.1f} epochs, stopped: {training['stopped']}{best})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pipeline.save(args.out)
    threshold = "none" if pipeline.threshold is None else f"{pipeline.threshold:.6g}"
    region = "" if pipeline.region_threshold is None else f", region threshold {pipeline.region_threshold:.6g}"
    print(f"saved {args.out} (fit {time.perf_counter() - started:.1f} s, threshold {threshold}{region})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ml import registry
    from ml.data import open_dataset
    from ml.metrics import METRICS, evaluation
    from ml.metrics.per_kind import kind_from_path, per_kind_metrics

    pipeline = registry.load(_existing(args.model))
    data = open_dataset(args.data, split="test")
    scores, maps, masks, labels = [], [], [], []
    started = time.perf_counter()
    for batch in _batches(data, args.batch_size or pipeline.config.batch_size, "predict"):
        predictions = pipeline.predict([s.image for s in batch])
        scores.extend(np.asarray(predictions.scores, np.float64).tolist())
        maps.extend(np.asarray(m, np.float32) for m in predictions.maps)
        masks.extend(s.mask for s in batch)
        labels.extend(s.label for s in batch)
    seconds = time.perf_counter() - started
    threshold = None if args.oracle_threshold else (args.threshold if args.threshold is not None else pipeline.threshold)
    # The model's own thresholds: images flagged by the image one, pixels outlined by the region one.
    region = pipeline.region_threshold if threshold is not None and args.threshold is None else None
    result = evaluation(scores, maps, masks, labels, threshold=threshold, region_threshold=region)
    result.metrics["images_per_second"] = len(data) / seconds if seconds > 0 else float("nan")
    print(f"{pipeline.name} on {args.data} ({len(data)} images)")
    print(_table(result.metrics, {**METRICS, "images_per_second": "Inference images/s (incl. reading)"}))
    per_kind = {}
    if result.metrics.get("threshold") is not None:
        kinds = [kind_from_path(data[i].name) for i in range(len(data))]
        per_kind = per_kind_metrics(scores, maps, masks, labels, kinds, result.metrics["threshold"])
    if per_kind:
        print("\nper defect kind (each against the normal images)")
        print(f"  {'kind':24} {'images':>6} {'recall':>7} {'AU-PRO':>7} {'AUROC':>7}")
        fmt = lambda v: "    –  " if v is None else f"{v:7.3f}"  # noqa: E731
        for kind, m in per_kind.items():
            print(f"  {kind:24} {m['images']:>6} {fmt(m['image_recall'])} {fmt(m['aupro'])} {fmt(m['image_auroc'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"pipeline": pipeline.name, "metrics": result.metrics, "curves": result.curves}
        if per_kind:
            report["per_kind"] = per_kind
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ml import registry
    from ml.data import read_image
    from ml.export import ExportedModel, is_exported
    from ml.formats.mvtec import encode_png, is_image_file
    from ml.thresholds import normalize

    model = _existing(args.model)
    pipeline = ExportedModel(model) if is_exported(model) else registry.load(model)
    paths: list[Path] = []
    for path in args.images:
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if is_image_file(p))
        elif is_image_file(path):
            paths.append(path)
        else:
            raise CliError(f"{path}: not an image file or folder")
    if not paths:
        raise CliError("no images found")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    used: set[str] = set()
    for batch in _batches(paths, args.batch_size or pipeline.config.batch_size, "predict"):
        images = [read_image(p) for p in batch]
        predictions = pipeline.predict(images)
        for i, (path, image) in enumerate(zip(batch, images)):
            stem = _unique_stem(path, used)
            heat = normalize(np.asarray(predictions.maps[i]), pipeline.normalization)
            if not pipeline.normalization:  # no calibration: stretch each map for display
                heat = normalize(heat, {"min": float(heat.min()), "max": float(max(heat.max(), heat.min() + 1e-12))})
            colour = heatmap_rgb(heat)
            (args.out / f"{stem}_heatmap.png").write_bytes(encode_png(colour))
            mask = None if predictions.masks is None else np.asarray(predictions.masks[i]).astype(bool)
            (args.out / f"{stem}_overlay.png").write_bytes(encode_png(overlay(image, colour, mask)))
            if mask is not None:
                (args.out / f"{stem}_mask.png").write_bytes(encode_png(np.where(mask, 255, 0).astype(np.uint8)))
            score = float(predictions.scores[i])
            rows.append(
                {
                    "image": str(path),
                    "score": score,
                    "normalized_score": float(normalize(score, pipeline.normalization)) if pipeline.normalization else None,
                    "anomalous": None if pipeline.threshold is None else bool(score > pipeline.threshold),
                    "heatmap": f"{stem}_heatmap.png",
                }
            )
    (args.out / "predictions.json").write_text(json.dumps(rows, indent=1))
    for row in rows:
        verdict = {True: "ANOMALOUS", False: "normal", None: "-"}[row["anomalous"]]
        print(f"{verdict:10} {row['score']:12.6g}  {row['image']}")
    print(f"wrote {len(rows)} heatmaps and overlays to {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ml import registry
    from ml.export import ExportError, export_model

    pipeline = registry.load(_existing(args.model))
    try:
        out = export_model(pipeline, args.format, args.out)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {out} ({args.format}, {pipeline.name}, input (N, 3, {pipeline.config.image_size}, {pipeline.config.image_size}) in [0, 1])")
    return 0


def cmd_synthetic(args: argparse.Namespace) -> int:
    from ml.data.synthetic import write_synthetic_mvtec

    try:
        if args.kind == "rail":
            from ml.data.rail_synthetic import write_synthetic_rail

            root = write_synthetic_rail(args.out, args.train, args.normal, args.anomalous, 2 * args.size, args.size, args.seed)
            print(f"wrote synthetic rail scenes (rail masks under class_masks/rail/) to {root}")
            return 0
        root = write_synthetic_mvtec(args.out, args.train, args.normal, args.anomalous, args.size, args.seed, args.kind)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote a synthetic MVTec AD layout set to {root}")
    return 0


# --- pieces --------------------------------------------------------------------------------

def heatmap_rgb(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 RGB with the JET colour map (blue low, red high)."""
    import cv2

    grey = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, heat: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """Heatmap blended over the image, the predicted mask outlined in white."""
    import cv2

    if heat.shape[:2] != image.shape[:2]:
        heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    out = (image.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).round().astype(np.uint8)
    if mask is not None and mask.any():
        if mask.shape != image.shape[:2]:
            mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), max(1, min(image.shape[:2]) // 256))
    return out


class _ProgressBars:
    """A ``progress(stage, fraction, metrics)`` callback drawing one tqdm bar per stage."""

    def __init__(self) -> None:
        self.bar = None
        self.stage: str | None = None

    def __enter__(self) -> "_ProgressBars":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, stage: str, fraction: float, metrics: dict[str, float] | None = None) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=100, desc=stage, unit="%", bar_format="{desc:>12}: {percentage:3.0f}%|{bar}| {postfix}")
            self.stage = stage
        self.bar.n = round(100 * min(max(fraction, 0.0), 1.0), 1)
        if metrics:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self.bar.refresh()


def _batches(items: Sequence[Any], size: int, desc: str):
    from tqdm import tqdm

    with tqdm(total=len(items), desc=desc, unit="img") as bar:
        for start in range(0, len(items), max(1, size)):
            batch = [items[i] for i in range(start, min(start + size, len(items)))]
            yield batch
            bar.update(len(batch))


def _read_config(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise CliError(f"--config: {text!r} is neither JSON text nor a file")
        source = path.read_text()
    try:
        config = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"--config: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CliError("--config: expected a JSON object")
    return config


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise CliError(f"{path}: no such model file")
    return path


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, k = path.stem, 1
    while stem in used:
        k += 1
        stem = f"{path.stem}_{k}"
    used.add(stem)
    return stem


def _table(metrics: dict[str, float], names: dict[str, str]) -> str:
    width = max(len(names.get(k, k)) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for key in list(names) + [k for k in metrics if k not in names]:
        if key in metrics:
            value = metrics[key]
            text = f"{value:.0f}" if key in ("images", "anomalous_images") else f"{value:.4f}"
            lines.append(f"{names.get(key, key):<{width}}  {text}")
    return "\n".join(lines)

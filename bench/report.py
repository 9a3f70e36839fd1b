"""The README's benchmark tables, generated from the JSON the benchmarks write.

    python bench/report.py            # rewrite the tables in README.md
    python bench/report.py --check    # exit 1 (and show the difference) when README.md is stale
    python bench/report.py --print bench/results/gpu    # print the tables of one results folder

Every table sits in README.md between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; what is between the markers is replaced, the rest
of the README is left alone. Sources (all under ``bench/results/``, committed):

- ``quality``: ``quality/*.json`` (``bench/quality.py --json``) and ``peers.json``
  (the peer library's figures from ``shared/BENCHMARKS.md``);
- ``speed``: ``speed.json`` (``bench/speed.py --json``, with ``--fit-scaling``);
- ``search``: ``search.json`` (``bench/search.py --json``);
- ``reconstruction_speed``: ``reconstruction_speed.json`` (``bench/reconstruction_speed.py --json``);
- ``utad_combine``: ``utad_combine.json`` (``bench/utad_combine.py --json``);
- ``utad_levels``: ``utad_levels.json`` (``bench/utad_levels.py --json``);
- ``frame_rate``: ``frame_rate.json`` (``bench/frame_rate.py --json``);
- ``rail``: ``rail/*.json`` (``bench/quality.py --pipelines rail --datasets-only synthetic_rail --json``);
- ``gpu``: ``gpu/*.json`` (``bench/gpu.sh``).

Each file is ``{"run": {...}, "rows": [...]}``; ``run`` says which command,
commit and machine produced the rows, and is shown under each table.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"

PROTOCOL_ORDER = ["mpdd", "mpdd_supervised", "car_damage_via", "crackforest"]
QUALITY_METRICS = [
    ("image_auroc", "image AUROC"),
    ("pixel_auroc", "pixel AUROC"),
    ("aupro", "AU-PRO"),
    ("pixel_aupr", "pixel AUPR"),
    ("pixel_f1_max", "pixel F1-max"),
]


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "rows" not in data or "run" not in data:
        raise ValueError(f"{path}: expected an object with 'run' and 'rows'")
    return data


def load_all(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, load(path)) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def provenance(runs: list[dict[str, Any]]) -> list[str]:
    """One line per run: which command, when, which commit, on what."""
    lines = []
    for i, run in enumerate(runs, 1):
        parts = [f"`{run['command']}`" if run.get("command") else None, run.get("date"),
                 f"commit {run['commit']}" if run.get("commit") else None, run.get("machine"), run.get("note")]
        lines.append(f"- [{i}] " + ", ".join(p for p in parts if p) + ".")
    return lines


def learns_from(row: dict[str, Any]) -> str:
    if row.get("learns_from"):
        return row["learns_from"]
    if row.get("protocol") == "mpdd":
        return f"{row['train_images']} normal images"
    return f"{row['train_images']} images, masks"


def render_quality(results: Path) -> str:
    runs, rows = [], []
    for _, data in load_all(results / "quality") + ([(None, load(results / "peers.json"))] if (results / "peers.json").exists() else []):
        if data["run"] not in runs:
            runs.append(data["run"])
        rows += [(runs.index(data["run"]) + 1, row) for row in data["rows"]]
    rows.sort(key=lambda item: (PROTOCOL_ORDER.index(item[1]["protocol"]) if item[1]["protocol"] in PROTOCOL_ORDER else 99,
                                bool(item[1].get("peer"))))
    header = ["dataset", "pipeline", "learns from", *(title for _, title in QUALITY_METRICS), "fit s", "img/s", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run, row in rows:
        label = row.get("label") or (f"`{row['pipeline']}`" + (f" ({row['preset']})" if row.get("preset") else ""))
        fit = number(row.get("fit_seconds"), 0) + (f" ({row['fit_note']})" if row.get("fit_note") else "")
        cells = [row["dataset"], label, learns_from(row), *(number(row.get(key)) for key, _ in QUALITY_METRICS),
                 fit, number(row.get("images_per_second"), 1), f"[{run}]"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + provenance(runs))


THESIS_MEANS = [("mean_accuracy", "mean acc."), ("mean_dice", "mean F1"), ("mean_iou", "mean IoU"), ("mean_auroc", "mean AUROC")]


def render_thesis(results: Path) -> str:
    """The rows that carry the thesis' per-image means (eq. 5.1-5.6) beside our pixel metrics."""
    runs, rows = [], []
    for _, data in load_all(results / "quality"):
        for row in data["rows"]:
            if row.get("mean_dice") is None or row.get("peer"):
                continue
            if data["run"] not in runs:
                runs.append(data["run"])
            rows.append((runs.index(data["run"]) + 1, row))
    rows.sort(key=lambda item: (PROTOCOL_ORDER.index(item[1]["protocol"]) if item[1]["protocol"] in PROTOCOL_ORDER else 99, item[1]["pipeline"]))
    header = ["dataset", "pipeline", "steps", "pixel AUROC", "AU-PRO", "pixel F1-max", *(t for _, t in THESIS_MEANS), "fit s", "img/s", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run, row in rows:
        label = row.get("label") or f"`{row['pipeline']}`"
        training = row.get("training") or {}
        steps = f"{training['steps']} ({training.get('stopped', '')})" if training.get("steps") else "-"
        cells = [row["dataset"], label, steps, number(row.get("pixel_auroc")), number(row.get("aupro")), number(row.get("pixel_f1_max")),
                 *(number(row.get(k)) for k, _ in THESIS_MEANS), number(row.get("fit_seconds"), 0),
                 number(row.get("images_per_second"), 1), f"[{run}]"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + provenance(runs))


def render_camvid(results: Path) -> str:
    """The road-scene table (bench/quality.py protocol camvid_open_set): network x anomaly score."""
    from bench.quality import semantic_table

    files = load_all(results / "camvid")
    if not files:
        return "Not measured yet: run `python bench/quality.py --pipelines seg_ood --datasets-only camvid_open_set`."
    runs, rows, numbers = [], [], []
    for _, data in files:
        runs.append(data["run"])
        rows += data["rows"]
        numbers += [len(runs)] * len(data["rows"])
    return semantic_table(rows, numbers) + "\n\n" + "\n".join(provenance(runs))


def render_speed(results: Path) -> str:
    from bench.speed import fit_table, speed_table

    if not (results / "speed.json").exists():
        return "Not measured yet: run `python bench/speed.py --fit-scaling --json bench/results/speed.json`."
    data = load(results / "speed.json")
    source = next((r["source"] for r in data["rows"] if r.get("source")), None)
    parts = [speed_table(data["rows"])]
    if any("images" in r for r in data["rows"]):
        parts.append(fit_table(data["rows"]))
    note = f"Throughput rows: models fitted on {source}.\n\n" if source else ""
    return "\n\n".join(parts) + "\n\n" + note + provenance([data["run"]])[0]


def render_search(results: Path) -> str:
    from bench.search import markdown

    if not (results / "search.json").exists():
        return "Not measured yet: run `python bench/search.py --json bench/results/search.json`."
    data = load(results / "search.json")
    return markdown(data["rows"]) + "\n\n" + provenance([data["run"]])[0]


def render_reconstruction_speed(results: Path) -> str:
    from bench.reconstruction_speed import markdown

    path = results / "reconstruction_speed.json"
    if not path.exists():
        return "Not measured yet: run `python bench/reconstruction_speed.py --json bench/results/reconstruction_speed.json`."
    data = load(path)
    threads = 2
    match = re.search(r"with (\d+) threads", data["run"].get("machine", ""))
    if match:
        threads = int(match.group(1))
    return markdown(data["rows"], threads) + "\n\n" + provenance([data["run"]])[0]


def render_utad_combine(results: Path) -> str:
    path = results / "utad_combine.json"
    if not path.exists():
        return "Not measured yet: run `python bench/utad_combine.py --json bench/results/utad_combine.json`."
    data = load(path)
    lines = [
        "| levels combined by | inference precision | image AUROC | pixel AUROC | AU-PRO | pixel F1-max "
        "| thesis accuracy | thesis F1 | thesis IoU | thesis AUROC | fit s | img/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("image_auroc", "pixel_auroc", "aupro", "pixel_f1_max", "mean_accuracy", "mean_dice", "mean_iou", "mean_auroc")
    for r in data["rows"]:
        equation = {"product": "product (eq. 4.21)", "sum": "sum (eq. 4.19)"}.get(r["combine"], r["combine"])
        # Runs before the precision was recorded inferred in float32.
        lines.append(f"| {equation} | {r.get('precision', 'float32')} | " + " | ".join(number(r.get(k)) for k in keys)
                     + f" | {number(r.get('fit_seconds'), 0)} | {number(r.get('images_per_second'), 1)} |")
    return "\n".join(lines) + "\n\n" + provenance([data["run"]])[0]


def render_utad_levels(results: Path) -> str:
    """One line per set of levels, the product and the sum side by side (pixel AUROC / AU-PRO / F1-max)."""
    path = results / "utad_levels.json"
    if not path.exists():
        return "Not measured yet: run `python bench/utad_levels.py MODEL --json bench/results/utad_levels.json`."
    data = load(path)
    by_levels: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
    for r in data["rows"]:
        by_levels.setdefault(tuple(r["levels"]), {})[r["combine"]] = r

    def cell(row: dict[str, Any] | None) -> str:
        return " / ".join(number(row.get(k)) for k in ("pixel_auroc", "aupro", "pixel_f1_max")) if row else "(the level itself)"

    dataset = data["rows"][0]["dataset"] if data["rows"] else "?"
    lines = [
        f"| levels | product (eq. 4.21) on {dataset} | sum (eq. 4.19) |",
        "|---|---|---|",
    ]
    for levels, row in by_levels.items():
        lines.append(f"| {' + '.join(levels)} | {cell(row.get('product'))} | {cell(row.get('sum'))} |")
    return "\n".join(lines) + "\n\n" + provenance([data["run"]])[0]


def render_frame_rate(results: Path) -> str:
    from bench.frame_rate import markdown

    path = results / "frame_rate.json"
    if not path.exists():
        return "Not measured yet: run `python bench/frame_rate.py --json bench/results/frame_rate.json`."
    data = load(path)
    return markdown(data["rows"]) + "\n\n" + provenance([data["run"]])[0]


RAIL_TARGETS = {"rail_miou": 0.80, "image_auroc": 0.95}  # issue 13, on synthetic test scenes


def render_rail(results: Path) -> str:
    """The two-stage rail pipeline on synthetic scenes: stage 1's rail mIoU and obstacle detection,
    with issue 13's targets beside the figures they apply to."""
    files = load_all(results / "rail")
    if not files:
        return "Not measured yet: run `python bench/quality.py --pipelines rail --datasets-only synthetic_rail`."

    def against(value: Any, key: str) -> str:
        text = number(value)
        target = RAIL_TARGETS.get(key)
        if target is None or text == "-":
            return text
        return f"{text} ({'meets' if value >= target else 'below'} {target:.2f})"

    def interval(r: dict) -> str:
        low, high = r.get("image_auroc_low"), r.get("image_auroc_high")
        return "-" if low is None or high is None else f"{number(low)} - {number(high)}"

    header = ["rail mIoU (target)", "rail IoU", "image AUROC (target)", "its 95% interval (test scenes' bootstrap)", "pixel AUROC", "AU-PRO",
              "box recall at the threshold", "fit s", "frames/s end to end", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    runs = []
    for _, data in files:
        runs.append(data["run"])
        for r in data["rows"]:
            lines.append("| " + " | ".join([
                against(r.get("rail_miou"), "rail_miou"), number(r.get("rail_iou")), against(r.get("image_auroc"), "image_auroc"),
                interval(r), number(r.get("pixel_auroc")), number(r.get("aupro")), number(r.get("box_recall"), 2),
                number(r.get("fit_seconds"), 0), number(r.get("images_per_second"), 1), f"[{len(runs)}]",
            ]) + " |")
    return "\n".join(lines + [""] + provenance(runs))


def render_gpu(results: Path) -> str:
    return gpu_tables(results / "gpu")


def gpu_tables(folder: Path) -> str:
    """Tables of every JSON in ``folder`` as ``bench/gpu.sh`` writes them (speed, quality, jobs)."""
    from bench.speed import speed_table

    files = load_all(folder)
    if not files:
        return ("Not measured for this code yet: run `bench/gpu.sh` on a machine with a CUDA GPU. The figures of the "
                "code before the GPU path (one H200, 2026-11-30) are in `shared/BENCHMARKS.md`.")
    parts, runs = [], []
    for path, data in files:
        runs.append(data["run"])
        rows, tag = data["rows"], f"[{len(runs)}]"
        if not rows:
            # bench/quality.py writes an empty file when the datasets it needs are not on the machine.
            parts.append(f"`{path.name}` {tag}: nothing measured (no rows; were its datasets on the machine?)")
        elif "forward_img_s" in rows[0]:
            parts.append(f"Speed {tag}:\n\n" + speed_table(rows))
        elif rows and "runs" in rows[0] and "source" in rows[0]:
            from bench.reconstruction_speed import markdown as reconstruction_speed_table

            parts.append(f"Reconstruction family and multilevel, images/s at 256 px {tag}:\n\n" + reconstruction_speed_table(rows, 2))
        elif rows and "predict_fps" in rows[0]:
            from bench.frame_rate import markdown as frame_rate_table

            parts.append(f"Road-scene networks, frames/s at batch 1 {tag}:\n\n" + frame_rate_table(rows))
        elif rows and "measure" in rows[0]:
            parts.append(f"Inference job end to end {tag}:\n\n| measure | value |\n|---|---|\n"
                         + "\n".join(f"| {r['measure']} | {r['value']} |" for r in rows))
        elif rows and "protocol" in rows[0]:
            metric_rows = [f"| `{r['pipeline']}`{' (' + r['preset'] + ')' if r.get('preset') else ''} | "
                           + " | ".join(number(r.get(k)) for k, _ in QUALITY_METRICS)
                           + f" | {number(r.get('fit_seconds'), 0)} | {number(r.get('images_per_second'), 1)} |" for r in rows]
            header = "| pipeline | " + " | ".join(t for _, t in QUALITY_METRICS) + " | fit s | img/s |"
            parts.append(f"Quality on {rows[0]['dataset']} {tag}:\n\n" + header + "\n|" + "---|" * (len(QUALITY_METRICS) + 3)
                         + "\n" + "\n".join(metric_rows))
        else:
            raise ValueError(f"{path}: rows of an unknown kind")
    return "\n\n".join(parts + ["\n".join(provenance(runs))])


SECTIONS: dict[str, Callable[[Path], str]] = {
    "quality": render_quality,
    "thesis": render_thesis,
    "camvid": render_camvid,
    "speed": render_speed,
    "search": render_search,
    "reconstruction_speed": render_reconstruction_speed,
    "utad_combine": render_utad_combine,
    "utad_levels": render_utad_levels,
    "frame_rate": render_frame_rate,
    "rail": render_rail,
    "gpu": render_gpu,
}


def render_readme(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked section regenerated from ``results``."""
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
        if pattern.search(text):
            table = render(results)
            text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 when README.md differs from the JSON")
    parser.add_argument("--print", dest="print_folder", type=Path, default=None, help="only print the tables of this folder's JSON (bench/gpu.sh's)")
    args = parser.parse_args(argv)
    if args.print_folder is not None:
        print(gpu_tables(args.print_folder))
        return 0
    current = README.read_text()
    fresh = render_readme(current)
    if args.check:
        if fresh != current:
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), "README.md", "generated"))
            print("\nREADME.md's benchmark tables differ from bench/results: run python bench/report.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

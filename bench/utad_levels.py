"""utad: which feature levels, combined by product (eq. 4.21) or sum (eq. 4.19), on a validation set.

The product of eq. 4.21 has no weight to tune (its lambda_l only scale the map),
so its one free choice is the set of levels. This scores a saved model (from
``bench/utad_combine.py --save``) with every non-empty subset of its levels,
both ways, on images the benchmark never trains or tests on: by default the 60
defective plates of ``mpdd_metal_plate_defective_train``, whose masks give the
pixel AUROC, AU-PRO and pixel F1-max::

    .venv/bin/python bench/utad_combine.py --save /tmp/utad.pt
    .venv/bin/python bench/utad_levels.py /tmp/utad.pt [--json out.json]
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import run_info, write_json  # noqa: E402
from bench.quality import default_datasets_dir  # noqa: E402
from ml import registry  # noqa: E402
from ml.data.datasets import ImageMaskDataset  # noqa: E402
from ml.metrics import evaluate  # noqa: E402


class LevelSubset(torch.nn.Module):
    """The model's feature extractor, handing on only some of its levels (in its order)."""

    def __init__(self, extractor: torch.nn.Module, keep: tuple[str, ...]):
        super().__init__()
        self.extractor, self.keep = extractor, keep

    def forward(self, x):
        levels = self.extractor(x)
        return {name: levels[name] for name in self.keep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a saved utad model")
    parser.add_argument("--dataset", default="mpdd_metal_plate_defective_train", help="a folder of images with masks under the datasets directory")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = run_info("bench/utad_levels.py", sys.argv[1:])
    pipeline = registry.load(args.model)
    if pipeline.name != "utad":
        raise SystemExit(f"{args.model} holds a {pipeline.name!r} model, not a utad one")
    pipeline.config.mixed_precision = False  # float32, as the benchmark table's first rows
    samples = list(ImageMaskDataset(default_datasets_dir() / args.dataset))
    extractor = pipeline.features
    names = tuple(pipeline.config.feature_layers)
    rows = []
    print(f"{args.dataset}, {len(samples)} images: pixel AUROC / AU-PRO / pixel F1-max\n| levels | combine | pixel AUROC | AU-PRO | pixel F1-max |\n|---|---|---|---|---|")
    for size in range(len(names), 0, -1):
        for keep in itertools.combinations(names, size):
            for combine in ("product", "sum") if size > 1 else ("product",):  # one level: both are the level itself
                pipeline.features = LevelSubset(extractor, keep)
                pipeline.config.combine = combine
                predictions = pipeline.predict([s.image for s in samples])
                m = evaluate(predictions.scores, predictions.maps, [s.mask for s in samples], [s.label for s in samples], threshold=None)
                print(f"| {' + '.join(keep)} | {combine} | {m['pixel_auroc']:.4f} | {m['aupro']:.4f} | {m['pixel_f1_max']:.4f} |", flush=True)
                rows.append({"levels": list(keep), "combine": combine, "dataset": args.dataset, **{k: m[k] for k in ("pixel_auroc", "aupro", "pixel_f1_max")}})
    pipeline.features = extractor
    if args.json:
        write_json(args.json, rows, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

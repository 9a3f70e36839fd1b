"""Configuration of the ``multilevel`` pipeline (no torch import)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "supervised"
DESCRIPTION = (
    "Multi-level patch anomaly segmentation of the thesis (section 4.1.2, Table 5.3): every pixel of the image "
    "rescaled to image_size is classified from the 33x33 patch around it by a variational encoder of four "
    "residual fundamental blocks and a squeeze-excitation block, whose three feature levels an aggregation block "
    "feeds, with the latent mean and variance, to a five-layer classifier; a patch decoder regularises it. Loss "
    "MSE_sum + KL_sum + alpha BCE_sum on balanced anomalous / normal patches at several scales. Learns from "
    "annotated images; inference runs the encoder once per image (exactly equal to one pass per patch)."
)


@dataclasses.dataclass
class MultiLevelConfig(TrainingConfig):
    schema_title = "Multi-level patch classifier (supervised)"

    threshold_policy: Literal["fpr", "minmax", "f1", "manual"] = dataclasses.field(
        default="f1",
        metadata={"help": "How the decision threshold is calibrated: F1-optimal on annotated validation images (default), "
                  "accepted false-positive rate or max score on normal validation images, or manual."},
    )
    image_size: int = dataclasses.field(
        default=256,
        metadata={"help": "The image is rescaled to this size and every pixel gets a 33x33 patch: a larger size means a "
                  "smaller patch relative to the image (Table 5.3: 128 / 256 / 512).", "minimum": 64, "maximum": 1024},
    )
    alpha: float = dataclasses.field(
        default=0.001, metadata={"help": "Weight of the classification term (eq. 4.5; Table 5.3: 0.001 best of 0.01 / 0.001 / 0.0001).", "minimum": 0.0}
    )
    base_channels: int = dataclasses.field(
        default=8, metadata={"help": "Channels of the first two fundamental blocks (the last two have twice as many).", "minimum": 4, "maximum": 128}
    )
    latent_dim: int = dataclasses.field(default=32, metadata={"help": "Size of the latent vector (mean and variance each).", "minimum": 2, "maximum": 1024})
    hidden: int = dataclasses.field(default=64, metadata={"help": "Width of the encoder's two linear layers.", "minimum": 8, "maximum": 1024})
    pool_grid: Literal[1, 3, 11] = dataclasses.field(
        default=3,
        metadata={"help": "The encoder's last feature map is average-pooled to this grid of cells of the 33x33 patch and "
                  "flattened before its linear layers (1: one vector per patch, which blurs where in the patch things are)."},
    )
    aggregation_channels: int = dataclasses.field(
        default=16, metadata={"help": "Size of each of the three level vectors of the aggregation block.", "minimum": 2, "maximum": 512}
    )
    scales: list[float] = dataclasses.field(
        default_factory=lambda: [0.75, 1.0, 1.25],
        metadata={"help": "Training patches are cut from the image rescaled to these multiples of image_size (scale invariance, section 4.1.2)."},
    )
    batch_size: int = dataclasses.field(
        default=8, metadata={"help": "Tiles per step (half placed over an anomaly), each holding tile_size x tile_size patch centres.", "minimum": 2, "maximum": 512}
    )
    tile_size: int = dataclasses.field(
        default=32, metadata={"help": "Patch centres per tile side: the patches of a tile share one encoder pass.", "minimum": 1, "maximum": 256}
    )
    patches_per_step: int = dataclasses.field(
        default=512, metadata={"help": "Patches classified per step, half anomalous and half normal (balanced sampling).", "minimum": 2, "maximum": 65536}
    )
    decoded_patches: int = dataclasses.field(
        default=32, metadata={"help": "Of those, how many the decoder reconstructs per step (its MSE term regularises the encoder).", "minimum": 1, "maximum": 4096}
    )
    max_steps: int = dataclasses.field(
        default=1500, metadata={"help": "Budget of optimisation steps; validation stops earlier when it stops improving.", "minimum": 1, "maximum": 1_000_000}
    )
    dense_stride: int = dataclasses.field(
        default=1,
        metadata={"help": "Classify every pixel (1, exact) or every 2nd / 4th pixel and interpolate the map bilinearly (faster).", "minimum": 1, "maximum": 8},
    )
    validation_stride: int = dataclasses.field(
        default=4, metadata={"help": "dense_stride used for the early-stopping validation during training (cheaper).", "minimum": 1, "maximum": 8}
    )
    score_top_fraction: float = dataclasses.field(
        default=0.001,
        metadata={"help": "Image score = mean of the highest fraction of pixel probabilities; 0 means the maximum.", "minimum": 0.0, "maximum": 1.0},
    )
    # The loss sums 3267 squared pixel errors per patch; clipping the norm of such gradients to 1 would
    # swamp the small classification term, so the thesis' un-clipped loss is the default.
    grad_clip: float = dataclasses.field(default=0.0, metadata={"help": "Clip the gradient norm to this value (0: no clipping).", "minimum": 0.0})

    def validate(self) -> None:
        super().validate()
        if not self.scales:
            raise ConfigError("scales", "at least one scale is required")
        for i, s in enumerate(self.scales):
            if not 0.25 <= s <= 4.0:
                raise ConfigError(f"scales[{i}]", f"must be between 0.25 and 4, got {s}")

    def channels(self) -> tuple[int, int, int, int]:
        b = self.base_channels
        return (b, b, 2 * b, 2 * b)


MultiLevelConfig.presets = {
    "paper": {
        "description": "The thesis' best setting (section 5.3, Table 5.3 row 2): image size 256 (33x33 patches), alpha "
        "0.001, 64 patches per step, Adam lr 1e-3, constant rate, no early stopping; the thesis' 10 epochs over "
        "all patches are beyond a CPU, so the budget is 3000 steps.",
        "config": {"image_size": 256, "alpha": 0.001, "patches_per_step": 64, "decoded_patches": 64, "learning_rate": 1e-3, "max_steps": 3000,
                   "patience": 0, "lr_schedule": "constant", "warmup_steps": 0, "base_channels": 16, "latent_dim": 64,
                   "hidden": 128, "aggregation_channels": 32},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 400 steps, every 2nd pixel classified.",
        "config": {"image_size": 128, "max_steps": 400, "warmup_steps": 20, "dense_stride": 2},
    },
}

CONFIG_CLASS = MultiLevelConfig

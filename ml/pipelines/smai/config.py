"""Configuration of the ``smai`` pipeline (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "SMAI, superpixel masking and inpainting (Li et al.): learns from normal images only. Each image is cut "
    "into SLIC superpixels; an inpainting U-Net with PEN-Net's pyramid attention transfer learns to restore "
    "k randomly masked superpixels (SSIM objective). At test time every superpixel is masked and restored in "
    "turn (batched), and the anomaly map sums 1 - SSIM (or the squared error) of the restored regions "
    "(eq. 2-3)."
)


@dataclasses.dataclass
class SMAIConfig(TrainingConfig):
    schema_title = "SMAI, superpixel masking and inpainting (normal images only)"

    n_segments: int = dataclasses.field(
        default=100, metadata={"help": "SLIC superpixels per image, approximately (the paper: 77 at 256 px).", "minimum": 4, "maximum": 2000}
    )
    compactness: float = dataclasses.field(
        default=10.0, metadata={"help": "SLIC compactness: higher gives squarer superpixels.", "minimum": 0.01, "maximum": 1000.0}
    )
    masked_superpixels: int = dataclasses.field(
        default=13, metadata={"help": "Superpixels masked at random in each training image (the paper: 10 of 77).", "minimum": 1, "maximum": 1000}
    )
    superpixels_per_pass: int = dataclasses.field(
        default=13,
        metadata={
            "help": "At test time, superpixels restored per inpainting pass, never two neighbours (1: the paper's "
            "one by one). Several far-apart holes per pass look like training (k holes) and cost a fraction of the time.",
            "minimum": 1,
            "maximum": 1000,
        },
    )
    anomaly_map: Literal["ssim", "l2"] = dataclasses.field(
        default="ssim", metadata={"help": "Map of eq. 2 (1 - SSIM over each restored superpixel) or eq. 3 (squared error)."}
    )
    base_channels: int = dataclasses.field(
        default=16, metadata={"help": "Width of the first inpainting-network level (doubling to 8x).", "minimum": 4, "maximum": 128}
    )
    inference_batch: int = dataclasses.field(
        default=16, metadata={"help": "Masked copies per forward pass at test time.", "minimum": 1, "maximum": 1024}
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size % 32:
            raise ConfigError("image_size", f"must be a multiple of 32 (five stride-2 levels), got {self.image_size}")
        if self.masked_superpixels >= self.n_segments:
            raise ConfigError("masked_superpixels", "must be smaller than n_segments")


SMAIConfig.presets = {
    "paper": {
        "description": "The paper's settings (section 4.1.3): 256 px, 77 superpixels, 10 masked per training "
        "image, lr 1e-4, batch 8, 50000 iterations (GPU work), superpixels restored one by one at test time.",
        "config": {
            "image_size": 256, "n_segments": 77, "masked_superpixels": 10, "superpixels_per_pass": 1,
            "learning_rate": 1e-4, "batch_size": 8, "max_steps": 50000, "patience": 0,
        },
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 50 superpixels, 400 steps.",
        "config": {"image_size": 128, "n_segments": 50, "masked_superpixels": 7, "superpixels_per_pass": 7, "max_steps": 400},
    },
}

CONFIG_CLASS = SMAIConfig

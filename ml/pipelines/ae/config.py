"""Configuration of the ``ae`` pipeline (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "Convolutional autoencoder baseline (AE-L2 / AE-SSIM of the DFR paper's Tables II-III and the SMAI "
    "paper's Table 1; architecture of Bergmann et al.'s SSIM autoencoder): learns from normal images only to "
    "reconstruct them through a small latent code; the anomaly map is the per-pixel residual, squared error "
    "(L2) or 1 - SSIM, matching the training loss."
)


@dataclasses.dataclass
class AEConfig(TrainingConfig):
    schema_title = "Autoencoder, L2 or SSIM (normal images only)"

    loss: Literal["ssim", "l2"] = dataclasses.field(
        default="ssim", metadata={"help": "Training loss and anomaly map: 1 - SSIM (AE-SSIM) or squared error (AE-L2)."}
    )
    latent_dim: int = dataclasses.field(
        default=100, metadata={"help": "Size of the latent code (Bergmann et al.: 100).", "minimum": 1, "maximum": 4096}
    )
    base_channels: int = dataclasses.field(
        default=32, metadata={"help": "Width of the first convolutions (32, 64 and 128 deeper).", "minimum": 4, "maximum": 256}
    )
    ssim_window: int = dataclasses.field(
        default=11, metadata={"help": "SSIM window in working pixels (Gaussian, sigma 1.5).", "minimum": 3, "maximum": 31}
    )
    max_steps: int = dataclasses.field(
        default=3000, metadata={"help": "Budget of optimisation steps (one batch each).", "minimum": 1, "maximum": 1_000_000}
    )
    learning_rate: float = dataclasses.field(default=2e-4, metadata={"help": "Peak learning rate (Adam).", "minimum": 1e-7, "maximum": 1.0})

    def validate(self) -> None:
        super().validate()
        if self.image_size % 16:
            raise ConfigError("image_size", f"must be a multiple of 16 (four stride-2 convolutions), got {self.image_size}")
        if self.ssim_window % 2 == 0:
            raise ConfigError("ssim_window", "must be odd")


AEConfig.presets = {
    "paper": {
        "description": "Bergmann et al.'s settings as the DFR and SMAI papers ran the baseline: SSIM loss, "
        "latent 100, Adam lr 2e-4, batch 128 images (here 8), long training (no early stopping).",
        "config": {"loss": "ssim", "latent_dim": 100, "learning_rate": 2e-4, "max_steps": 10000, "patience": 0},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 600 steps.",
        "config": {"image_size": 128, "max_steps": 600},
    },
}

CONFIG_CLASS = AEConfig

"""Configuration of the ``ganomaly`` pipeline (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "GANomaly (Akcay et al.; baseline of the thesis' Table 5.6): learns from normal images only. An "
    "encoder-decoder-encoder generator reconstructs the image and re-encodes the reconstruction; a "
    "discriminator judges real against reconstructed images. Losses: adversarial (feature matching), "
    "contextual (L1 reconstruction) and encoder (L2 between the two latent codes). The image score is the "
    "distance between the latent codes; the map is the smoothed reconstruction residual."
)


@dataclasses.dataclass
class GANomalyConfig(TrainingConfig):
    schema_title = "GANomaly (normal images only)"

    latent_dim: int = dataclasses.field(default=100, metadata={"help": "Size of the latent code (GANomaly: 100).", "minimum": 1, "maximum": 4096})
    base_channels: int = dataclasses.field(
        default=32, metadata={"help": "Width of the first convolution (doubling per stride-2 level).", "minimum": 4, "maximum": 256}
    )
    w_adversarial: float = dataclasses.field(default=1.0, metadata={"help": "Weight of the adversarial loss (GANomaly: 1).", "minimum": 0.0})
    w_contextual: float = dataclasses.field(default=50.0, metadata={"help": "Weight of the contextual L1 loss (GANomaly: 50).", "minimum": 0.0})
    w_encoder: float = dataclasses.field(default=1.0, metadata={"help": "Weight of the encoder L2 loss (GANomaly: 1).", "minimum": 0.0})
    map_sigma: float = dataclasses.field(
        default=4.0, metadata={"help": "Gaussian smoothing of the residual map in working pixels (0: none).", "minimum": 0.0, "maximum": 64.0}
    )
    learning_rate: float = dataclasses.field(default=2e-4, metadata={"help": "Peak learning rate (Adam, beta1 0.5).", "minimum": 1e-7, "maximum": 1.0})

    def validate(self) -> None:
        super().validate()
        if self.image_size & (self.image_size - 1) or self.image_size < 32:
            raise ConfigError("image_size", f"must be a power of two of at least 32 (DCGAN encoder down to 4x4), got {self.image_size}")


GANomalyConfig.presets = {
    "paper": {
        "description": "GANomaly's settings: latent 100, loss weights 1 / 50 / 1, Adam lr 2e-4 (beta1 0.5), "
        "batch 64 (here 8), 15 epochs of a large set (here 3000 steps), no early stopping.",
        "config": {"latent_dim": 100, "w_adversarial": 1.0, "w_contextual": 50.0, "w_encoder": 1.0, "learning_rate": 2e-4, "max_steps": 3000, "patience": 0},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 400 steps.",
        "config": {"image_size": 128, "max_steps": 400},
    },
}

CONFIG_CLASS = GANomalyConfig

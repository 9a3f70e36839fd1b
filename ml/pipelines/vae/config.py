"""Configuration of the ``vae`` pipeline (no torch import)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "Variational autoencoder of the thesis (sections 3.3 and 4.2.1, Table 5.1): learns the canonical look of "
    "normal images; four stride-2 4x4 convs + dropout 0.3 + linear to a 256-d latent (mean and log-variance "
    "heads), decoder of two linear layers and four 3x3 convs with bilinear upsampling and a sigmoid. Loss "
    "MSE_sum + 0.1 KL_sum. The anomaly map is the reconstruction residual (L1 or 1 - SSIM); a trained vae also "
    "feeds the residual input of the unet pipeline."
)


@dataclasses.dataclass
class VAEConfig(TrainingConfig):
    schema_title = "Variational autoencoder (normal images)"

    latent_dim: int = dataclasses.field(
        default=256, metadata={"help": "Size of the latent vector (Table 5.1: 256; 4096 reconstructs more detail).", "minimum": 2, "maximum": 8192}
    )
    kl_weight: float = dataclasses.field(
        default=0.1, metadata={"help": "alpha of eq. 4.10: weight of the KL term against the reconstruction (Table 5.1: 0.1).", "minimum": 0.0}
    )
    reconstruction_loss: Literal["mse", "l1", "ssim"] = dataclasses.field(
        default="mse", metadata={"help": "Reconstruction term of the loss (Table 5.1 compares MSE_sum, L1_sum and SSIM error)."}
    )
    base_channels: int = dataclasses.field(
        default=32, metadata={"help": "Channels of the first encoder conv (then x2, x2, x2 capped at 2x).", "minimum": 4, "maximum": 256}
    )
    dropout: float = dataclasses.field(
        default=0.3, metadata={"help": "Dropout after the encoder convs (section 4.2.1: 0.3).", "minimum": 0.0, "maximum": 0.9}
    )
    anomaly_map: Literal["l1", "ssim"] = dataclasses.field(
        default="l1", metadata={"help": "Anomaly map: mean absolute residual over RGB, or 1 - SSIM of image and reconstruction."}
    )
    blur_sigma: float = dataclasses.field(
        default=4.0, metadata={"help": "Gaussian smoothing of the map, in working pixels (0: none).", "minimum": 0.0, "maximum": 64.0}
    )
    batch_size: int = dataclasses.field(default=16, metadata={"help": "Images per batch.", "minimum": 2, "maximum": 512})
    max_steps: int = dataclasses.field(
        default=1500, metadata={"help": "Budget of optimisation steps; validation stops earlier when it stops improving.", "minimum": 1, "maximum": 1_000_000}
    )
    # The sum losses are large (a 256x256 image alone sums 196k squared errors); clipping their
    # gradient norm to 1 would turn Adam into sign descent, so the thesis' un-clipped loss is the default.
    grad_clip: float = dataclasses.field(
        default=0.0, metadata={"help": "Clip the gradient norm to this value (0: no clipping).", "minimum": 0.0}
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size % 16:
            raise ConfigError("image_size", f"must be a multiple of 16 (four stride-2 convs), got {self.image_size}")

    def encoder_channels(self) -> tuple[int, int, int, int]:
        b = self.base_channels
        return (b, 2 * b, 2 * b, 2 * b)


VAEConfig.presets = {
    "paper": {
        "description": "The thesis' settings (section 5.1, Table 5.1 row 1): latent 256, alpha 0.1, MSE, batch 64, "
        "Adam lr 1e-3, 50 epochs (budget of 2000 steps, no early stopping).",
        "config": {"batch_size": 64, "learning_rate": 1e-3, "max_steps": 2000, "patience": 0, "lr_schedule": "constant", "warmup_steps": 0},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 400 steps.",
        "config": {"image_size": 128, "max_steps": 400, "warmup_steps": 20},
    },
}

CONFIG_CLASS = VAEConfig

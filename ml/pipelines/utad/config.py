"""Configuration of the ``utad`` pipeline (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "Unsupervised two-stage anomaly detection (thesis 4.2.1 / 5.4, after Liu et al.): learns from normal "
    "images only. An impression extractor (inception-block autoencoder with a KL-regularised feature "
    "distribution and an image/feature discriminator) turns an image into a detail-poor 'impression', "
    "optionally fused with a saved vae model's reconstruction; a style-transfer network (content encoders, "
    "AdaIN decoders, style encoder) learns the mapping between image and impression both ways. The anomaly "
    "map compares pretrained-network features of x and its rebuild, m and its rebuild, and x and m, combined "
    "over feature levels by product (eq. 4.21) or sum (eq. 4.19)."
)


@dataclasses.dataclass
class UTADConfig(TrainingConfig):
    schema_title = "Unsupervised two-stage anomaly detection (normal images only)"

    base_channels: int = dataclasses.field(
        default=16, metadata={"help": "Width of the first layers of both networks (doubling deeper).", "minimum": 4, "maximum": 128}
    )
    impression_steps: int = dataclasses.field(
        default=800, metadata={"help": "Optimisation steps of the impression extractor (stage 1).", "minimum": 1, "maximum": 1_000_000}
    )
    max_steps: int = dataclasses.field(
        default=1200, metadata={"help": "Optimisation steps of the style-transfer network (stage 2).", "minimum": 1, "maximum": 1_000_000}
    )
    lambda_reconstruction: float = dataclasses.field(
        default=10.0, metadata={"help": "Weight lambda of the impression's L1 reconstruction loss (eq. 4.9).", "minimum": 0.0}
    )
    alpha_kl: float = dataclasses.field(
        default=0.01, metadata={"help": "Weight alpha of the KL term of the feature distribution (eq. 4.9).", "minimum": 0.0}
    )
    vae_model: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "Path of a saved `vae` model whose reconstruction is fused with the impression "
            "(eq. 4.11; the thesis' best). Without one the impression extractor's output is used alone "
            "(no fusion). The vae is stored inside this model."
        },
    )
    w_vae: float = dataclasses.field(
        default=0.8, metadata={"help": "W_VAE of eq. 4.11 (W_IE = 1 - W_VAE) when vae_model is given.", "minimum": 0.0, "maximum": 1.0}
    )
    perceptual_loss: bool = dataclasses.field(
        default=True, metadata={"help": "Add the perceptual loss of eq. 4.17 to the style-transfer training (the thesis' change)."}
    )
    feature_layers: list[str] = dataclasses.field(
        default_factory=lambda: ["block2", "block4", "block10"],
        metadata={"help": "EfficientNet-Lite0 levels of the feature distances phi_l (strides 4, 8, 16), where the thesis used VGG-19 or ResNet-18."},
    )
    combine: Literal["product", "sum"] = dataclasses.field(
        default="product", metadata={"help": "Combine the levels' error maps by product (eq. 4.21, the thesis' change) or sum (eq. 4.19)."}
    )
    map_sigma: float = dataclasses.field(
        default=4.0, metadata={"help": "Gaussian smoothing of the anomaly map in working pixels (0: none).", "minimum": 0.0, "maximum": 64.0}
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size % 64:
            raise ConfigError("image_size", f"must be a multiple of 64 (the discriminator's six halvings), got {self.image_size}")
        if not self.feature_layers:
            raise ConfigError("feature_layers", "at least one level is required")


UTADConfig.presets = {
    "paper": {
        "description": "The thesis' settings (5.4): batch 8, lr 1e-3, style transfer with the perceptual "
        "loss, levels combined by product (eq. 4.21), W_VAE 0.8 when a vae model is given.",
        "config": {"batch_size": 8, "learning_rate": 1e-3, "perceptual_loss": True, "combine": "product", "w_vae": 0.8, "patience": 0},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 300 + 400 steps.",
        "config": {"image_size": 128, "impression_steps": 300, "max_steps": 400},
    },
}

CONFIG_CLASS = UTADConfig

"""Configuration of the supervised U-Net pipeline (no torch import: the web
process lists pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "supervised"
DESCRIPTION = (
    "Supervised U-Net segmentation (thesis 4.1.1 / 5.2): learns pixel masks of anomalies from annotated "
    "images (normal images with empty masks are welcome). Four down and four up blocks of 3x3 conv + batch "
    "norm + ReLU, bilinear upsampling, concatenated skips; loss BCE + Dice + IoU, optional flip-consistency "
    "loss; flip and colour augmentation. The anomaly map is the predicted probability of each pixel."
)


@dataclasses.dataclass
class UNetConfig(TrainingConfig):
    schema_title = "U-Net (supervised)"

    # Probabilities are already calibrated to [0, 1]; the natural threshold is
    # the F1-optimal one on annotated validation images (0.5 without them).
    threshold_policy: Literal["fpr", "minmax", "f1", "manual"] = dataclasses.field(
        default="f1",
        metadata={
            "help": "How the decision threshold is calibrated: F1-optimal on annotated validation images "
            "(default; 0.5 when there are none), accepted false-positive rate or max score on normal "
            "validation images, or manual."
        },
    )
    input: Literal["image", "image+residual"] = dataclasses.field(
        default="image",
        metadata={
            "help": "Network input: the image, or the image concatenated with the residual of a 'vae' "
            "pipeline's reconstruction (thesis 4.1.1)."
        },
    )
    encoder: Literal["efficientnet_lite0", "plain"] = dataclasses.field(
        default="efficientnet_lite0",
        metadata={
            "help": "Encoder: the ImageNet-pretrained EfficientNet-Lite0 (works offline) under the thesis decoder, or the "
            "thesis' plain U-Net encoder trained from scratch (section 4.1.1)."
        },
    )
    encoder_lr_scale: float = dataclasses.field(
        default=0.1,
        metadata={"help": "Learning rate of the pretrained encoder relative to the decoder's.", "minimum": 0.0, "maximum": 1.0},
    )
    freeze_encoder: bool = dataclasses.field(
        default=False, metadata={"help": "Keep the pretrained encoder's weights fixed (only the decoder learns)."}
    )
    base_channels: int = dataclasses.field(
        default=16,
        metadata={"help": "Channels of the first block; doubled at each of the four levels (64 = classic U-Net).", "minimum": 4, "maximum": 128},
    )
    max_steps: int = dataclasses.field(
        default=800, metadata={"help": "Budget of optimisation steps (one batch each); validation stops earlier when it stops improving.", "minimum": 1, "maximum": 1_000_000}
    )
    bce_weight: float = dataclasses.field(default=1.0, metadata={"help": "Weight of the binary cross-entropy term.", "minimum": 0.0})
    dice_weight: float = dataclasses.field(default=1.0, metadata={"help": "Weight of the soft Dice term (thesis eq. 5.9).", "minimum": 0.0})
    iou_weight: float = dataclasses.field(default=1.0, metadata={"help": "Weight of the soft IoU term (thesis eq. 5.10).", "minimum": 0.0})
    consistency_weight: float = dataclasses.field(
        default=0.0,
        metadata={
            "help": "Weight of the consistency loss (thesis eq. 5.11): the prediction of an image against the "
            "un-flipped prediction of its flipped copy. 0 turns it off (it costs a second forward pass).",
            "minimum": 0.0,
        },
    )
    augment_flips: bool = dataclasses.field(default=True, metadata={"help": "Random horizontal and vertical flips."})
    augment_color: bool = dataclasses.field(
        default=True, metadata={"help": "Random brightness, contrast, saturation and hue changes."}
    )
    score_top_fraction: float = dataclasses.field(
        default=0.001,
        metadata={
            "help": "Image score = mean of the highest fraction of pixel probabilities (at working "
            "resolution); 0 means the maximum.",
            "minimum": 0.0,
            "maximum": 1.0,
        },
    )

    retired_keys = ("epochs",)

    def validate(self) -> None:
        super().validate()
        factor = 32 if self.encoder == "efficientnet_lite0" else 16
        if self.image_size % factor:
            raise ConfigError("image_size", f"must be a multiple of {factor} for the {self.encoder} encoder, got {self.image_size}")
        if self.input == "image+residual":
            from ml import registry

            if "vae" not in registry.names():
                raise ConfigError(
                    "input",
                    "'image+residual' needs the 'vae' pipeline for the reconstruction residual, which is not "
                    "available in this installation; use 'image'",
                )
        if self.bce_weight + self.dice_weight + self.iou_weight <= 0:
            raise ConfigError("bce_weight", "at least one of bce_weight, dice_weight, iou_weight must be positive")


UNetConfig.presets = {
    "paper": {
        "description": "The thesis' U-Net (section 4.1.1, figure 4.2; section 5.2, Table 5.2 test 7, its best F1 on "
        "the image alone): plain encoder trained from scratch with 64 base channels, batch 4, Adam lr 1e-3, BCE with "
        "the flip-consistency loss (eq. 5.11), flip and colour augmentation.",
        "config": {
            "encoder": "plain", "base_channels": 64, "batch_size": 4, "learning_rate": 1e-3,
            "dice_weight": 0.0, "iou_weight": 0.0, "consistency_weight": 1.0,
        },
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, 300 steps.",
        "config": {"image_size": 128, "max_steps": 300, "warmup_steps": 20},
    },
}

CONFIG_CLASS = UNetConfig

"""Configuration of the supervised U-Net pipeline (no torch import: the web
process lists pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, PipelineConfig

SUPERVISION = "supervised"
DESCRIPTION = (
    "Supervised U-Net segmentation (thesis 4.1.1 / 5.2): learns pixel masks of anomalies from annotated "
    "images (normal images with empty masks are welcome). Four down and four up blocks of 3x3 conv + batch "
    "norm + ReLU, bilinear upsampling, concatenated skips; loss BCE + Dice + IoU, optional flip-consistency "
    "loss; flip and colour augmentation. The anomaly map is the predicted probability of each pixel."
)


@dataclasses.dataclass
class UNetConfig(PipelineConfig):
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
    epochs: int = dataclasses.field(default=20, metadata={"help": "Passes over the training images (12 reached pixel F1-max 0.94 on MPDD metal_plate).", "minimum": 1, "maximum": 10000})
    base_channels: int = dataclasses.field(
        default=16,
        metadata={"help": "Channels of the first block; doubled at each of the four levels (64 = classic U-Net).", "minimum": 4, "maximum": 128},
    )
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate.", "minimum": 1e-7, "maximum": 1.0})
    weight_decay: float = dataclasses.field(default=0.0, metadata={"help": "Adam weight decay.", "minimum": 0.0, "maximum": 1.0})
    lr_schedule: Literal["cosine", "constant"] = dataclasses.field(
        default="cosine", metadata={"help": "Learning-rate schedule over the epochs."}
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

    def validate(self) -> None:
        super().validate()
        if self.image_size % 16:
            raise ConfigError("image_size", f"must be a multiple of 16 (four 2x2 poolings), got {self.image_size}")
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


CONFIG_CLASS = UNetConfig

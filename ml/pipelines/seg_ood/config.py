"""Configuration of the road-scene pipeline ``seg_ood`` (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "semantic"
DESCRIPTION = (
    "Road-scene anomaly segmentation (road-scene paper): a real-time semantic segmentation network (ERFNet, "
    "ENet, BiSeNet; or a U-Net under a pretrained EfficientNet-Lite0 encoder, ours) learns the known classes "
    "from class-index masks; a pixel is anomalous when the network is unsure: MSP, MaxLogit, max entropy, MSP "
    "with temperature, or the void-class probability, selectable at inference without retraining."
)

Network = Literal["erfnet", "enet", "bisenet", "lite0_unet"]
Score = Literal["msp", "maxlogit", "max_entropy", "msp_temperature", "void"]


@dataclasses.dataclass
class SegOODConfig(TrainingConfig):
    schema_title = "Road-scene segmentation + anomaly scores"

    image_size: int = dataclasses.field(
        default=480, metadata={"help": "Working width in pixels (the height follows image_height).", "minimum": 64, "maximum": 2048}
    )
    image_height: int = dataclasses.field(
        default=360,
        metadata={"help": "Working height in pixels (rounded to the network's stride).", "minimum": 32, "maximum": 2048},
    )
    network: Network = dataclasses.field(
        default="erfnet",
        metadata={"help": "Segmentation network: ERFNet, ENet, BiSeNet (paper section II-C; BiSeNet's context path on "
                  "EfficientNet-Lite0), or lite0_unet (ours: the U-Net decoder under a pretrained Lite0 encoder)."},
    )
    num_classes: int = dataclasses.field(
        default=11, metadata={"help": "Class indices in the label masks (0 .. num_classes-1), void excluded.", "minimum": 2, "maximum": 254}
    )
    void_index: int = dataclasses.field(
        default=11, metadata={"help": "Label index of void / unlabelled pixels (ignored, or a class with void_class).", "minimum": 0, "maximum": 255}
    )
    unknown_classes: list[int] = dataclasses.field(
        default_factory=lambda: [9, 10],
        metadata={"help": "Classes never learned (the open-set protocol's unknown objects: CamVid Pedestrian 9, "
                  "Bicyclist 10); ignored in training, they are the anomalies in evaluation."},
    )
    void_class: bool = dataclasses.field(
        default=False, metadata={"help": "Train void as a class of its own, so the 'void' score (eq. 11) exists."}
    )
    score: Score = dataclasses.field(
        default="maxlogit",
        metadata={"help": "Anomaly score per pixel (eq. 7-11); can be changed on a trained model without retraining."},
    )
    temperature: float | None = dataclasses.field(
        default=None,
        metadata={"help": "T of the msp_temperature score (eq. 10); empty: calibrated on validation pixels over the "
                  "paper's grid 0.5-2 (lowest NLL).", "minimum": 0.05, "maximum": 20.0},
    )
    class_weighting: Literal["enet", "none"] = dataclasses.field(
        default="enet",
        metadata={"help": "Class-balanced loss weights w = 1 / ln(1.02 + p_class) as ENet / ERFNet train them, or none."},
    )
    aux_weight: float = dataclasses.field(
        default=1.0, metadata={"help": "Weight alpha of BiSeNet's two auxiliary losses (joint loss).", "minimum": 0.0}
    )
    batch_size: int = dataclasses.field(default=8, metadata={"help": "Images per batch.", "minimum": 1, "maximum": 512})
    learning_rate: float = dataclasses.field(default=5e-4, metadata={"help": "Peak learning rate (Adam).", "minimum": 1e-7, "maximum": 1.0})
    weight_decay: float = dataclasses.field(default=1e-4, metadata={"help": "Adam weight decay.", "minimum": 0.0, "maximum": 1.0})
    max_steps: int = dataclasses.field(
        default=3000, metadata={"help": "Budget of optimisation steps; validation mIoU stops earlier when it stops improving.", "minimum": 1, "maximum": 1_000_000}
    )
    threshold_policy: Literal["fpr", "minmax", "f1", "manual"] = dataclasses.field(
        default="f1",
        metadata={"help": "Region threshold: F1-optimal over unknown-object pixels of validation images (fpr on "
                  "normal maps when none), accepted FPR, max of normal maps, or manual."},
    )

    retired_keys = ()

    def known_classes(self) -> list[int]:
        return [c for c in range(self.num_classes) if c not in set(self.unknown_classes)]

    def outputs(self) -> int:
        """Channels of the network: the known classes, plus void when trained as a class."""
        return len(self.known_classes()) + (1 if self.void_class else 0)

    def validate(self) -> None:
        super().validate()
        bad = [c for c in self.unknown_classes if not 0 <= c < self.num_classes]
        if bad:
            raise ConfigError("unknown_classes", f"class {bad[0]} is not in 0..{self.num_classes - 1}")
        if len(self.known_classes()) < 2:
            raise ConfigError("unknown_classes", "at least two known classes must remain to learn")
        if 0 <= self.void_index < self.num_classes:
            raise ConfigError("void_index", f"must not be one of the classes 0..{self.num_classes - 1}")
        if self.score == "void" and not self.void_class:
            raise ConfigError("score", "'void' needs void_class: true (a network trained with a void class)")
        if self.score == "msp_temperature" and self.temperature is not None and self.temperature <= 0:
            raise ConfigError("temperature", "must be positive")


SegOODConfig.presets = {
    "paper": {
        "description": "The road-scene paper's setting: ERFNet scored by MaxLogit (its best score, Table 2) at "
        "CamVid's full 480x360.",
        "config": {"network": "erfnet", "score": "maxlogit", "image_size": 480, "image_height": 360},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: ENet at 240x176, 300 steps.",
        "config": {"network": "enet", "image_size": 240, "image_height": 176, "max_steps": 300, "warmup_steps": 20},
    },
}

CONFIG_CLASS = SegOODConfig

"""Configuration of the ``riad`` pipeline (no torch import: the web process lists
pipelines through this module)."""
from __future__ import annotations

import dataclasses

from ml.config import ConfigError, TrainingConfig

SUPERVISION = "unsupervised"
DESCRIPTION = (
    "RIAD, reconstruction by inpainting (Zavrtanik et al.; thesis 2.3.2 and baseline of Table 5.6): learns "
    "from normal images only. The image is cut into a grid of square cells (sizes 2, 4, 8, 16 px), the cells "
    "are split at random into three complementary masks, and a U-Net inpaints each masked copy; the three "
    "inpainted parts together rebuild the image. Loss MSE + MS-GMS + SSIM (eq. 2.7); the anomaly map is "
    "1 - the mean-filtered MS-GMS similarity of image and rebuild, averaged over the cell sizes (eq. 2.8-2.9)."
)


@dataclasses.dataclass
class RIADConfig(TrainingConfig):
    schema_title = "RIAD, reconstruction by inpainting (normal images only)"

    cell_sizes: list[int] = dataclasses.field(
        default_factory=lambda: [2, 4, 8, 16],
        metadata={"help": "Grid cell sizes in working pixels; each is inpainted through three complementary masks (thesis 2.3.2: 2, 4, 8, 16)."},
    )
    lambda_msgms: float = dataclasses.field(default=1.0, metadata={"help": "Weight lambda_1 of the MS-GMS loss (eq. 2.7).", "minimum": 0.0})
    lambda_ssim: float = dataclasses.field(default=1.0, metadata={"help": "Weight lambda_2 of the SSIM loss (eq. 2.7).", "minimum": 0.0})
    smoothing: int = dataclasses.field(
        default=21, metadata={"help": "Mean-filter size s_f of the anomaly map (eq. 2.8; RIAD: 21).", "minimum": 1, "maximum": 101}
    )
    base_channels: int = dataclasses.field(
        default=16, metadata={"help": "Width of the first U-Net level (doubling to 8x).", "minimum": 4, "maximum": 128}
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size % 32:
            raise ConfigError("image_size", f"must be a multiple of 32 (five stride-2 levels), got {self.image_size}")
        if not self.cell_sizes:
            raise ConfigError("cell_sizes", "at least one cell size is required")
        for size in self.cell_sizes:
            if size < 1 or size > self.image_size // 2:
                raise ConfigError("cell_sizes", f"each size must be between 1 and image_size / 2, got {size}")


RIADConfig.presets = {
    "paper": {
        "description": "RIAD as the thesis describes it (2.3.2): cells 2, 4, 8, 16, lambda_1 = lambda_2 = 1, "
        "mean filter 21; Zavrtanik et al. train with Adam lr 1e-4 for 300 epochs (here 5000 steps of 8 images).",
        "config": {"cell_sizes": [2, 4, 8, 16], "learning_rate": 1e-4, "max_steps": 5000, "patience": 0},
    },
    "fast": {
        "description": "A quick look on 2 CPU cores: 128 px, cells 4 and 8 (6 inpaintings per image), 400 steps.",
        "config": {"image_size": 128, "cell_sizes": [4, 8], "max_steps": 400, "smoothing": 11},
    },
}

CONFIG_CLASS = RIADConfig

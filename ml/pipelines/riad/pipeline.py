"""RIAD pipeline (thesis 2.3.2): train the inpainting U-Net on normal images with a
random cell size per step; at inference rebuild each image at every cell size
(three complementary masks each, drawn once from the config's seed so a saved
model answers the same) and map eq. 2.8. Image score = the map's maximum."""
from __future__ import annotations

import torch

from ml.components.reconstruction import ReconstructionPipeline
from ml.pipelines.riad.anomaly_map import riad_map
from ml.pipelines.riad.config import DESCRIPTION, RIADConfig
from ml.pipelines.riad.loss import riad_loss
from ml.pipelines.riad.torch_model import RIADModel, complementary_grid_masks
from ml.registry import register


@register
class RIADPipeline(ReconstructionPipeline):
    name = "riad"
    config_class = RIADConfig
    description = DESCRIPTION

    def build_model(self) -> RIADModel:
        return RIADModel(self.config.base_channels)

    def loss(self, x, aux, generator) -> torch.Tensor:
        cfg: RIADConfig = self.config
        sizes = cfg.cell_sizes
        cell = sizes[int(torch.randint(len(sizes), (1,), generator=generator))]
        masks = complementary_grid_masks(cfg.image_size, cell, generator)
        return riad_loss(x, self.model(x, masks), cfg.lambda_msgms, cfg.lambda_ssim)

    def anomaly_maps(self, x, aux):
        cfg: RIADConfig = self.config
        generator = torch.Generator().manual_seed(cfg.seed)
        rebuilds = [self.model(x, complementary_grid_masks(cfg.image_size, cell, generator)) for cell in cfg.cell_sizes]
        maps = riad_map(x, rebuilds, cfg.smoothing)
        return maps, maps.flatten(1).amax(dim=1)

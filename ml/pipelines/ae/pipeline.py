"""AE-L2 / AE-SSIM pipeline: trains the autoencoder on normal images with the
chosen loss; the anomaly map is the matching residual, the image score its maximum."""
from __future__ import annotations

import torch

from ml.components.reconstruction import ReconstructionPipeline
from ml.pipelines.ae.anomaly_map import residual_map
from ml.pipelines.ae.config import DESCRIPTION, AEConfig
from ml.pipelines.ae.torch_model import ConvAutoencoder
from ml.registry import register


@register
class AEPipeline(ReconstructionPipeline):
    name = "ae"
    config_class = AEConfig
    description = DESCRIPTION

    def build_model(self) -> ConvAutoencoder:
        cfg: AEConfig = self.config
        return ConvAutoencoder(cfg.image_size, cfg.latent_dim, cfg.base_channels)

    def loss(self, x, aux, generator) -> torch.Tensor:
        return residual_map(x, self.model(x), self.config.loss, self.config.ssim_window).mean()

    def anomaly_maps(self, x, aux):
        maps = residual_map(x, self.model(x), self.config.loss, self.config.ssim_window)
        return maps, maps.flatten(1).amax(dim=1)

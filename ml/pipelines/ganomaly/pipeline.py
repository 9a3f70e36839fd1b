"""GANomaly pipeline: adversarial training in the shared loop (two optimizers, Adam beta1 0.5),
validation = the generator's contextual + encoder loss on held-back normal images.
Image score = mean squared distance of the latent codes; map = smoothed |x - x^|."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.components.features import gaussian_blur
from ml.components.reconstruction import ReconstructionPipeline
from ml.pipelines.ganomaly.config import DESCRIPTION, GANomalyConfig
from ml.pipelines.ganomaly.loss import discriminator_loss, generator_loss
from ml.pipelines.ganomaly.torch_model import GANomalyModel
from ml.registry import register


@register
class GANomalyPipeline(ReconstructionPipeline):
    name = "ganomaly"
    config_class = GANomalyConfig
    description = DESCRIPTION

    def build_model(self) -> GANomalyModel:
        cfg: GANomalyConfig = self.config
        return GANomalyModel(cfg.image_size, cfg.latent_dim, cfg.base_channels)

    def optimizers(self):
        cfg: GANomalyConfig = self.config
        make = lambda module: torch.optim.Adam(module.parameters(), lr=cfg.learning_rate, betas=(0.5, 0.999), weight_decay=cfg.weight_decay)
        return {"g": make(self.model.generator), "d": make(self.model.discriminator)}

    def train_step(self, trainer, x, aux, generator):
        cfg: GANomalyConfig = self.config
        fake, z, z_fake = self.model.generator(x)
        _, real_features = self.model.discriminator(x)
        _, fake_features = self.model.discriminator(fake)
        g_loss = generator_loss(x, fake, z, z_fake, real_features.detach(), fake_features, cfg.w_adversarial, cfg.w_contextual, cfg.w_encoder)
        g = trainer.backward_step(g_loss, "g")
        p_real, _ = self.model.discriminator(x)
        p_fake, _ = self.model.discriminator(fake.detach())
        d = trainer.backward_step(discriminator_loss(p_real, p_fake), "d")
        return {"loss": g, "d_loss": d}

    def loss(self, x, aux, generator) -> torch.Tensor:
        cfg: GANomalyConfig = self.config
        fake, z, z_fake = self.model.generator(x)
        return cfg.w_contextual * F.l1_loss(fake, x) + cfg.w_encoder * F.mse_loss(z_fake, z)

    def anomaly_maps(self, x, aux):
        fake, z, z_fake = self.model.generator(x)
        maps = gaussian_blur((x - fake).abs().mean(dim=1), self.config.map_sigma)
        return maps, (z - z_fake).pow(2).flatten(1).mean(dim=1)

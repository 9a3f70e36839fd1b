"""GANomaly's losses (Akcay et al. 2018, section 3): generator = w_adv * L_adv + w_con * L_con + w_enc * L_enc."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_loss(x, fake, z, z_fake, real_features, fake_features, w_adv: float, w_con: float, w_enc: float) -> torch.Tensor:
    adversarial = F.mse_loss(fake_features, real_features)  # feature matching on the discriminator's last hidden map
    contextual = F.l1_loss(fake, x)
    encoder = F.mse_loss(z_fake, z)
    return w_adv * adversarial + w_con * contextual + w_enc * encoder


def discriminator_loss(p_real: torch.Tensor, p_fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))

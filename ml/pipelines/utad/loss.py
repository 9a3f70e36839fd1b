"""The training objectives of the two stages (thesis 4.2.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.pipelines.utad.torch_model import ImpressionExtractor, StyleTransfer


def impression_loss(model: ImpressionExtractor, x: torch.Tensor, lam: float, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """Eq. 4.9: lambda * reconstruction + alpha * KL (eq. 4.7) + DSC (eq. 4.8).

    The reconstruction term is the L1 loss the text names (eq. 4.6 writes it as
    a mean squared error). DSC: T must accept (x, E_M(x)) and reject a shuffled
    image paired with a feature map drawn from the estimated N(mu, sigma^2).
    """
    features = model.encoder(x)
    reconstruction = model.decoder(features)
    mean, log_var = model.feature_distribution(features)
    kl = 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).mean()
    noise = torch.randn(features.shape, generator=generator).to(x.device, x.dtype)
    sampled = mean[:, :, None, None] + (0.5 * log_var).exp()[:, :, None, None] * noise
    p_match = model.discriminator(x, features)
    p_mismatch = model.discriminator(x.roll(1, dims=0), sampled)
    dsc = F.binary_cross_entropy(p_match, torch.ones_like(p_match)) + F.binary_cross_entropy(p_mismatch, torch.zeros_like(p_mismatch))
    return lam * F.l1_loss(reconstruction, x) + alpha * kl + dsc


def style_transfer_loss(network: StyleTransfer, x: torch.Tensor, m: torch.Tensor, random_style: torch.Tensor, features=None) -> torch.Tensor:
    """Eq. 4.18: L_x + L_m + L_style (eq. 4.14-4.16) + the perceptual loss of eq. 4.17 when
    ``features`` (a frozen multi-level extractor) is given. Means instead of the equations'
    sums, so the terms keep their balance at any image size."""
    x_hat, m_hat, s = network(x, m, random_style)
    loss = F.l1_loss(x_hat, x) + F.l1_loss(m_hat, m) + F.l1_loss(network.style(x_hat), s)
    if features is not None:
        n = x.shape[0]
        levels = features(torch.cat([x, x_hat, m, m_hat]))
        for f in levels.values():
            fx, fxh, fm, fmh = f.split(n)
            loss = loss + F.l1_loss(fxh, fx) + F.l1_loss(fmh, fm)
    return loss

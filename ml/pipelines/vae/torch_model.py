"""The thesis' variational autoencoder (section 4.2.1, figure 4.12)."""
from __future__ import annotations

import torch
from torch import nn

from ml.components.variational import ConvDecoder, reparameterize


class VariationalAutoencoder(nn.Module):
    """(N, 3, S, S) in [0, 1] -> reconstruction (N, 3, S, S) in [0, 1], mu (N, M), logvar (N, M).

    Encoder: four 4x4 convs, stride 2, padding 1 (batch norm + ReLU), dropout,
    a linear layer (batch norm + ReLU) to the latent size, then two linear
    heads for the mean and the log-variance (no norm, no activation). The
    decoder gets a sample ``mu + sigma * eps`` while training and the mean in
    eval mode (deterministic reconstructions for maps and residuals).
    """

    def __init__(self, image_size: int = 256, latent_dim: int = 256, channels: tuple[int, int, int, int] = (32, 64, 64, 64), dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        flat = channels[-1] * (image_size // 16) ** 2
        self.to_latent = nn.Sequential(nn.Linear(flat, latent_dim), nn.BatchNorm1d(latent_dim), nn.ReLU(inplace=True))
        self.mu = nn.Linear(latent_dim, latent_dim)
        self.logvar = nn.Linear(latent_dim, latent_dim)
        self.decoder = ConvDecoder(latent_dim, image_size, 3, channels=(64, 32, 32, 16), hidden=latent_dim)
        self.image_size = image_size

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"expected (N, 3, {self.image_size}, {self.image_size}) images, got {tuple(x.shape)}")
        h = self.to_latent(self.dropout(self.convs(x)).flatten(1))
        return self.mu(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decoder(z), mu, logvar

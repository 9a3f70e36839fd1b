"""Parts the thesis' variational models share (sections 4.1.2 and 4.2.1): the
KL divergence to the standard normal (eq. 4.3), the re-parameterisation, and
the decoder of "two linear layers then four 3x3 convolutions with bilinear
upsampling, batch norm + ReLU, sigmoid output" (figures 4.5 and 4.12), used by
the ``vae`` (whole images) and the ``multilevel`` patch model (33x33 patches).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def kl_sum(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Eq. 4.3 per sample: ``0.5 * sum_m (mu_m^2 + sigma_m^2 - log sigma_m^2 - 1)``.

    ``mu``, ``logvar``: (N, M) -> (N,). The network predicts ``log sigma^2``
    (the "variance" head) so that sigma^2 stays positive.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``z = mu + sigma * eps`` with ``eps ~ N(0, I)`` (section 4.1.2) in training; ``mu`` in eval."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def halving_sizes(size: int, steps: int) -> list[int]:
    """Spatial sizes of a decoder that doubles ``steps`` times up to ``size``:
    33 -> [3, 5, 9, 17, 33], 256 -> [16, 32, 64, 128, 256]."""
    sizes = [size]
    for _ in range(steps):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes[::-1]


class ConvDecoder(nn.Module):
    """Latent (N, M) -> image (N, C, S, S) in [0, 1] (figures 4.5 / 4.12).

    Two linear layers (batch norm + ReLU) produce a ``channels[0]`` x s0 x s0
    map; four blocks of bilinear upsampling + 3x3 conv (padding 1) follow,
    each with batch norm + ReLU except the last, which has a sigmoid.
    ``channels``: the four conv outputs' inputs, e.g. (128, 64, 32, 16).
    """

    def __init__(self, latent_dim: int, out_size: int, out_channels: int = 3, channels: tuple[int, ...] = (128, 64, 32, 16), hidden: int = 512):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"the decoder has four conv layers; got {len(channels)} channel counts")
        self.sizes = halving_sizes(out_size, 4)
        self.start_channels = channels[0]
        s0 = self.sizes[0]
        self.linear = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, channels[0] * s0 * s0), nn.BatchNorm1d(channels[0] * s0 * s0), nn.ReLU(inplace=True),
        )
        outs = list(channels[1:]) + [out_channels]
        self.convs = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip(channels, outs)):
            last = i == 3
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1)]
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            self.convs.append(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s0 = self.sizes[0]
        x = self.linear(z).view(z.shape[0], self.start_channels, s0, s0)
        for size, conv in zip(self.sizes[1:], self.convs):
            x = conv(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False))
        return torch.sigmoid(x)

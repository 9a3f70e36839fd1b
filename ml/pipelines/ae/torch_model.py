"""The convolutional autoencoder of Bergmann et al. ("Improving unsupervised defect
segmentation by applying structural similarity to autoencoders"), the AE-L2 /
AE-SSIM baseline of DFR Tables II-III and SMAI Table 1.

Encoder: 4x4 stride-2 and 3x3 stride-1 convolutions with LeakyReLU(0.2),
widths b, b, b, 2b, 2b, 4b, 2b, b, then one convolution as large as the
remaining map (S/16) to a latent vector of ``latent_dim``; the decoder mirrors
it with transposed convolutions and ends in a sigmoid.
Shapes: ``(N, 3, S, S)`` in [0, 1] -> ``(N, 3, S, S)`` in [0, 1], S a multiple of 16.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, padding=1 if k == 3 else (1 if s == 2 else 0)), nn.LeakyReLU(0.2, inplace=True)]


def _deconv(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
    if s == 2:
        return [nn.ConvTranspose2d(cin, cout, 4, 2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    return [nn.Conv2d(cin, cout, 3, 1, padding=1), nn.LeakyReLU(0.2, inplace=True)]


class ConvAutoencoder(nn.Module):
    def __init__(self, image_size: int = 256, latent_dim: int = 100, base_channels: int = 32):
        super().__init__()
        b = base_channels
        # (kernel, stride, width) of the encoder, Bergmann et al. Table 1.
        layers = [(4, 2, b), (4, 2, b), (3, 1, b), (4, 2, 2 * b), (3, 1, 2 * b), (4, 2, 4 * b), (3, 1, 2 * b), (3, 1, b)]
        encoder: list[nn.Module] = []
        previous = 3
        for k, s, width in layers:
            encoder += _conv(previous, width, k, s)
            previous = width
        side = image_size // 16
        encoder.append(nn.Conv2d(previous, latent_dim, side))
        decoder: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, previous, side), nn.LeakyReLU(0.2, inplace=True)]
        widths = [3] + [w for _, _, w in layers]
        for (k, s, _), cout in zip(reversed(layers), reversed(widths[:-1])):
            if cout == 3:
                decoder += [nn.ConvTranspose2d(previous, 3, 4, 2, padding=1), nn.Sigmoid()]
            else:
                decoder += _deconv(previous, cout, k, s)
            previous = cout
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"expected (N, 3, {self.image_size}, {self.image_size}) images, got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))

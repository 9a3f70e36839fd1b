"""GANomaly (Akcay, Atapour-Abarghouei, Breckon 2018), the baseline of thesis Table 5.6.

DCGAN blocks: the encoder halves the size with 4x4 stride-2 convolutions
(batch norm + LeakyReLU 0.2 after all but the first) down to 4x4, then a 4x4
convolution gives the latent code (N, nz, 1, 1); the decoder mirrors it with
transposed convolutions (batch norm + ReLU) and a sigmoid (images in [0, 1]).
Generator: encoder G_E -> decoder G_D -> encoder E; the discriminator is an
encoder with one output whose last hidden map serves the feature-matching loss.
"""
from __future__ import annotations

import torch
from torch import nn


def dcgan_encoder(image_size: int, out_channels: int, base: int) -> tuple[nn.Sequential, nn.Module]:
    """(features (N, C, 4, 4), head (N, out, 1, 1)) of a DCGAN encoder."""
    layers: list[nn.Module] = [nn.Conv2d(3, base, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    size, channels = image_size // 2, base
    while size > 4:
        layers += [nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(channels * 2), nn.LeakyReLU(0.2, inplace=True)]
        size, channels = size // 2, channels * 2
    return nn.Sequential(*layers), nn.Conv2d(channels, out_channels, 4, 1, 0, bias=False)


class Encoder(nn.Module):
    def __init__(self, image_size: int, latent_dim: int, base: int):
        super().__init__()
        self.features, self.head = dcgan_encoder(image_size, latent_dim, base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Decoder(nn.Module):
    def __init__(self, image_size: int, latent_dim: int, base: int):
        super().__init__()
        channels, size = base, image_size // 2
        while size > 4:
            channels, size = channels * 2, size // 2
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, channels, 4, 1, 0, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True)]
        while size < image_size // 2:
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(channels // 2), nn.ReLU(True)]
            channels, size = channels // 2, size * 2
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Generator(nn.Module):
    def __init__(self, image_size: int, latent_dim: int, base: int):
        super().__init__()
        self.encoder = Encoder(image_size, latent_dim, base)
        self.decoder = Decoder(image_size, latent_dim, base)
        self.reencoder = Encoder(image_size, latent_dim, base)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> (reconstruction (N, 3, S, S), z (N, nz, 1, 1), z of the reconstruction)."""
        z = self.encoder(x)
        fake = self.decoder(z)
        return fake, z, self.reencoder(fake)


class Discriminator(nn.Module):
    def __init__(self, image_size: int, base: int):
        super().__init__()
        self.features, self.head = dcgan_encoder(image_size, 1, base)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> (probability real (N,), features (N, C, 4, 4))."""
        features = self.features(x)
        return torch.sigmoid(self.head(features)).flatten(), features


class GANomalyModel(nn.Module):
    def __init__(self, image_size: int = 256, latent_dim: int = 100, base: int = 32):
        super().__init__()
        self.generator = Generator(image_size, latent_dim, base)
        self.discriminator = Discriminator(image_size, base)

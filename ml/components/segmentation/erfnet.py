"""ERFNet (Romera et al.), as the road-scene paper summarises it (section II-C 3, Fig. 3c).

The building block is the "non-bottleneck-1D" residual layer: each 3x3
convolution of a non-bottleneck block is factorised into a 3x1 and a 1x3
convolution (about a third fewer parameters, eq. 6's residual form kept),
the second pair dilated to widen the receptive field. Downsampling blocks
concatenate a strided 3x3 convolution with a 2x2 max pooling (as ENet's initial
block); the small decoder upsamples with transposed convolutions.

Encoder: 3 -> 16 (down) -> 64 (down) -> 5 x nb1D(64) -> 128 (down) ->
2 x [nb1D(128) dilated 2, 4, 8, 16]; decoder: up 64, 2 x nb1D(64), up 16,
2 x nb1D(16), transposed conv to C classes. Output stride 1; H, W divisible by 8.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DownsamplerBlock(nn.Module):
    """``(N, C_in, H, W) -> (N, C_out, H/2, W/2)``: strided 3x3 conv (C_out - C_in maps) || 2x2 max pool, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class NonBottleneck1D(nn.Module):
    """The non-bottleneck-1D residual layer (Fig. 3c): 3x1, ReLU, 1x3, BN, ReLU, then the same pair
    dilated by ``dilation``, BN, dropout; added to the input, ReLU. Shape preserved."""

    def __init__(self, channels: int, dropout: float, dilation: int):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(dilation, 0), dilation=(dilation, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, dilation), dilation=(1, dilation), bias=True)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv3x1_1(x))
        y = F.relu(self.bn1(self.conv1x3_1(y)))
        y = F.relu(self.conv3x1_2(y))
        y = self.dropout(self.bn2(self.conv1x3_2(y)))
        return F.relu(y + x)


class UpsamplerBlock(nn.Module):
    """``(N, C_in, H, W) -> (N, C_out, 2H, 2W)``: 3x3 transposed conv stride 2, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=True)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class ERFNet(nn.Module):
    stride = 8

    def __init__(self, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [DownsamplerBlock(3, 16), DownsamplerBlock(16, 64)]
        layers += [NonBottleneck1D(64, 0.03, 1) for _ in range(5)]
        layers.append(DownsamplerBlock(64, 128))
        for _ in range(2):
            layers += [NonBottleneck1D(128, 0.3, d) for d in (2, 4, 8, 16)]
        self.encoder = nn.Sequential(*layers)
        self.decoder = nn.Sequential(
            UpsamplerBlock(128, 64), NonBottleneck1D(64, 0, 1), NonBottleneck1D(64, 0, 1),
            UpsamplerBlock(64, 16), NonBottleneck1D(16, 0, 1), NonBottleneck1D(16, 0, 1),
        )
        self.output = nn.ConvTranspose2d(16, num_classes, 2, stride=2, bias=True)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, num_classes, H, W)`` logits; H, W divisible by 8."""
        check_input(x, self.stride)
        return self.output(self.decoder(self.encoder(x)))


def check_input(x: torch.Tensor, stride: int) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-1] % stride or x.shape[-2] % stride:
        raise ValueError(f"height and width must be divisible by {stride}, got {tuple(x.shape[-2:])}")

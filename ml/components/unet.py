"""U-Net building blocks (thesis section 4.1.1, figure 4.2).

Every convolution is 3x3 with padding 1, followed by batch normalisation and
ReLU, twice per block ("double conv"). The encoder halves the resolution with
2x2 max pooling after each of its four blocks and keeps the block's output as
a skip; the decoder doubles it with bilinear upsampling (not transposed
convolutions: they leave checkerboard artefacts, as the thesis notes) and
concatenates the matching skip along channels before its double conv.

Shapes: input ``(N, C_in, H, W)`` with H and W divisible by 16 (four
poolings); output ``(N, C_out, H, W)`` logits.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DoubleConv(nn.Sequential):
    """(3x3 conv -> batch norm -> ReLU) x 2: ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int):
        # No conv bias: batch norm right after it would cancel it anyway.
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DownBlock(nn.Module):
    """Double conv, then 2x2 max pooling.

    ``forward(x)``: ``(N, C_in, H, W) -> (pooled (N, C_out, H/2, W/2), skip (N, C_out, H, W))``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.conv(x)
        return self.pool(skip), skip


class UpBlock(nn.Module):
    """Bilinear x2 upsampling, concatenation with the skip, double conv.

    ``forward(x (N, C_in, h, w), skip (N, C_skip, 2h, 2w)) -> (N, C_out, 2h, 2w)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = DoubleConv(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Four down blocks, a bottleneck double conv, four up blocks, a 1x1 head.

    Channel widths are ``base, 2*base, 4*base, 8*base`` in the encoder and
    ``16*base`` in the bottleneck (the classic U-Net with ``base=64``).
    """

    depth = 4

    def __init__(self, in_channels: int = 3, out_channels: int = 1, base_channels: int = 32):
        super().__init__()
        widths = [base_channels * 2**i for i in range(self.depth)]
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(DownBlock(previous, width))
            previous = width
        self.bottleneck = DoubleConv(previous, previous * 2)
        previous = previous * 2
        self.up = nn.ModuleList()
        for width in reversed(widths):
            self.up.append(UpBlock(previous, width, width))
            previous = width
        self.head = nn.Conv2d(previous, out_channels, 1)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H, W)`` logits; H, W divisible by 16."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        factor = 2**self.depth
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"height and width must be divisible by {factor}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x, skip = block(x)
            skips.append(skip)
        x = self.bottleneck(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(x, skip)
        return self.head(x)

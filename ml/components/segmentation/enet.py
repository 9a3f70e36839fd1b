"""ENet (Paszke et al.), as the road-scene paper summarises it (section II-C 2, Table 1, Fig. 2).

Initial block (Fig. 2a): a 3x3 stride-2 convolution with 13 filters
concatenated with a 2x2 max pooling of the input (3 maps): 16 maps at half size.
Bottleneck (Fig. 2b): 1x1 projection (a 2x2 stride-2 convolution when
downsampling), the main convolution (regular 3x3, dilated 3x3, or a 5x5
decomposed into 5x1 + 1x5 "asymmetric" convolutions, or a 3x3 transposed
convolution when upsampling), 1x1 expansion, with batch norm and PReLU between,
spatial dropout (p 0.01 up to bottleneck2.0, 0.1 after), added to the main
branch (identity; max pooling + zero channel padding when downsampling; 1x1
conv + max unpooling with the pooling indices when upsampling). No biases in the
projections. The layer list is Table 1's; the final "fullconv" is a transposed
convolution to C classes. H, W divisible by 8.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.components.segmentation.erfnet import check_input


class InitialBlock(nn.Module):
    def __init__(self, out_channels: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels - 3, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


def _bn_prelu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.PReLU(channels)]


class Bottleneck(nn.Module):
    """Regular / dilated / asymmetric bottleneck, or a downsampling one (``downsample``) that also returns
    the max-pooling indices for the decoder. Projection ratio 4."""

    def __init__(self, in_channels: int, out_channels: int, *, kind: str = "regular", dilation: int = 1,
                 downsample: bool = False, dropout: float = 0.1):
        super().__init__()
        inner = max(1, in_channels // 4)
        self.downsample = downsample
        self.extra_channels = out_channels - in_channels
        first = nn.Conv2d(in_channels, inner, 2, stride=2, bias=False) if downsample else nn.Conv2d(in_channels, inner, 1, bias=False)
        if kind == "asymmetric":
            main = [nn.Conv2d(inner, inner, (5, 1), padding=(2, 0), bias=False), nn.Conv2d(inner, inner, (1, 5), padding=(0, 2), bias=False)]
        else:
            main = [nn.Conv2d(inner, inner, 3, padding=dilation, dilation=dilation, bias=False)]
        self.branch = nn.Sequential(
            first, *_bn_prelu(inner), *main, *_bn_prelu(inner),
            nn.Conv2d(inner, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor):
        if self.downsample:
            main, indices = F.max_pool2d(x, 2, stride=2, return_indices=True)
            if self.extra_channels > 0:
                main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))
            return self.act(main + self.branch(x)), indices
        return self.act(x + self.branch(x))


class UpsamplingBottleneck(nn.Module):
    """Decoder bottleneck: main branch 1x1 conv + max unpooling with the encoder's indices; extension
    1x1 projection, 3x3 transposed conv (stride 2), 1x1 expansion."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1):
        super().__init__()
        inner = max(1, in_channels // 4)
        self.main = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, inner, 1, bias=False), *_bn_prelu(inner),
            nn.ConvTranspose2d(inner, inner, 3, stride=2, padding=1, output_padding=1, bias=False), *_bn_prelu(inner),
            nn.Conv2d(inner, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
        main = F.max_unpool2d(self.main(x), indices, 2, stride=2, output_size=size)
        return self.act(main + self.branch(x))


def _stage(channels: int) -> nn.Sequential:
    """bottleneck x.1 - x.8 of stages 2 and 3 (Table 1)."""
    return nn.Sequential(
        Bottleneck(channels, channels),
        Bottleneck(channels, channels, dilation=2),
        Bottleneck(channels, channels, kind="asymmetric"),
        Bottleneck(channels, channels, dilation=4),
        Bottleneck(channels, channels),
        Bottleneck(channels, channels, dilation=8),
        Bottleneck(channels, channels, kind="asymmetric"),
        Bottleneck(channels, channels, dilation=16),
    )


class ENet(nn.Module):
    stride = 8

    def __init__(self, num_classes: int):
        super().__init__()
        self.initial = InitialBlock(16)
        self.down1 = Bottleneck(16, 64, downsample=True, dropout=0.01)
        self.stage1 = nn.Sequential(*[Bottleneck(64, 64, dropout=0.01) for _ in range(4)])
        self.down2 = Bottleneck(64, 128, downsample=True, dropout=0.1)
        self.stage2 = _stage(128)
        self.stage3 = _stage(128)
        self.up4 = UpsamplingBottleneck(128, 64)
        self.stage4 = nn.Sequential(Bottleneck(64, 64), Bottleneck(64, 64))
        self.up5 = UpsamplingBottleneck(64, 16)
        self.stage5 = Bottleneck(16, 16)
        self.fullconv = nn.ConvTranspose2d(16, num_classes, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, num_classes, H, W)`` logits; H, W divisible by 8."""
        check_input(x, self.stride)
        x = self.initial(x)
        size1 = x.shape
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        size2 = x.shape
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2, size2))
        x = self.stage5(self.up5(x, indices1, size1))
        return self.fullconv(x)

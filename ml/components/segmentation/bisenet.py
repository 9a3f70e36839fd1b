"""BiSeNet (Yu et al.), as the road-scene paper summarises it (section II-C 1, Fig. 1).

Spatial Path: three 3x3 stride-2 convolutions with batch norm and ReLU, so its
output keeps 1/8 of the resolution and rich spatial detail. Context Path: a
lightweight pretrained backbone downsampling fast, plus global average pooling
for the largest receptive field; its 1/16 and 1/32 features each pass an
Attention Refinement Module (global pooling -> 1x1 conv -> BN -> sigmoid, a
channel attention multiplied back) and are merged in a U-shape with the pooled
context. The Feature Fusion Module concatenates both paths, mixes them with a
conv + BN + ReLU, and re-weights channels with an SE-like attention
(``x + x * a``). Two auxiliary heads supervise the Context Path (the joint loss
of the paper, alpha = 1).

The paper's context backbone is Xception (or ResNet-18); no such weights exist
offline here, so the Context Path uses the ImageNet EfficientNet-Lite0 (its
1/16 stage ``block10`` and 1/32 stage ``block15``). H, W divisible by 32.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.components.segmentation.erfnet import check_input


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


class AttentionRefinement(nn.Module):
    """``(N, C_in, h, w) -> (N, C_out, h, w)``: 3x3 conv, then multiplied by a channel attention
    from its global average (1x1 conv, BN, sigmoid)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels)
        self.attention = nn.Sequential(nn.Conv2d(out_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(F.adaptive_avg_pool2d(x, 1))


class FeatureFusion(nn.Module):
    """Spatial (N, C_s, h, w) + context (N, C_c, h, w) -> (N, C_out, h, w): concat, conv-BN-ReLU,
    then ``x + x * attention(global pool)`` (two 1x1 convs, ReLU, sigmoid)."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 4):
        super().__init__()
        self.mix = conv_bn_relu(in_channels, out_channels, kernel=1)
        self.attention = nn.Sequential(
            nn.Conv2d(out_channels, out_channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels // reduction, out_channels, 1), nn.Sigmoid(),
        )

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.mix(torch.cat([spatial, context], dim=1))
        return x + x * self.attention(F.adaptive_avg_pool2d(x, 1))


class ContextPath(nn.Module):
    """Lite0 stages to 1/32, ARMs on the 1/16 and 1/32 features, the global context added at 1/32,
    upsampled and merged: returns (context at 1/8, feature at 1/16, feature at 1/32)."""

    def __init__(self, pretrained: bool = True, channels: int = 128):
        super().__init__()
        if pretrained:
            from ml.components.backbones import load_efficientnet_lite0

            lite0 = load_efficientnet_lite0()
        else:
            from efficientnet_lite_pytorch import EfficientNet

            lite0 = EfficientNet.from_name("efficientnet-lite0")
        self.stem = nn.Sequential(lite0._conv_stem, lite0._bn0, lite0._swish)
        self.blocks = nn.ModuleList(lite0._blocks[:16])
        self.arm16 = AttentionRefinement(112, channels)
        self.arm32 = AttentionRefinement(320, channels)
        self.global_context = conv_bn_relu(320, channels, kernel=1)
        self.refine16 = conv_bn_relu(channels, channels)
        self.refine32 = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        f16 = None
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == 10:
                f16 = x
        f32 = x
        context = self.global_context(F.adaptive_avg_pool2d(f32, 1))
        up32 = self.arm32(f32) + context
        up32 = self.refine32(F.interpolate(up32, size=f16.shape[-2:], mode="bilinear", align_corners=False))
        up16 = self.arm16(f16) + up32
        size8 = (f16.shape[-2] * 2, f16.shape[-1] * 2)
        up16 = self.refine16(F.interpolate(up16, size=size8, mode="bilinear", align_corners=False))
        return up16, up32, f32


class BiSeNet(nn.Module):
    stride = 32

    def __init__(self, num_classes: int, pretrained: bool = True, channels: int = 128):
        super().__init__()
        self.spatial = nn.Sequential(conv_bn_relu(3, 64, stride=2), conv_bn_relu(64, 128, stride=2), conv_bn_relu(128, 256, stride=2))
        self.context = ContextPath(pretrained, channels)
        self.fusion = FeatureFusion(256 + channels, 256)
        self.head = nn.Sequential(conv_bn_relu(256, 64), nn.Conv2d(64, num_classes, 1))
        self.aux16 = nn.Sequential(conv_bn_relu(channels, 64), nn.Conv2d(64, num_classes, 1))
        self.aux32 = nn.Sequential(conv_bn_relu(320, 64), nn.Conv2d(64, num_classes, 1))
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, with_aux: bool = False):
        """``(N, 3, H, W) -> (N, num_classes, H, W)`` logits (and the two auxiliary logit maps at full
        size when ``with_aux``, for the joint loss); H, W divisible by 32."""
        check_input(x, self.stride)
        size = x.shape[-2:]
        context8, context16, f32 = self.context(x)
        logits = self.head(self.fusion(self.spatial(x), context8))
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if not with_aux:
            return logits
        aux = [F.interpolate(head(f), size=size, mode="bilinear", align_corners=False) for head, f in ((self.aux16, context16), (self.aux32, f32))]
        return logits, aux

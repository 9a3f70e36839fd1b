"""The network of the supervised U-Net pipeline: a U-Net with a one-channel
logit head (pixel is anomalous), with the thesis' plain encoder or a pretrained
EfficientNet-Lite0 encoder."""
from __future__ import annotations

import torch
from torch import nn

from ml.components.unet import PretrainedEncoderUNet, UNet


class UNetSegmenter(nn.Module):
    """``(N, C_in, H, W)`` normalised input -> ``(N, 1, H, W)`` logits.

    ``C_in`` is 3 for the image alone and 6 for image + reconstruction residual
    (thesis 4.1.1, channel-wise concatenation). ``encoder``: ``plain`` (thesis
    figure 4.2) or ``efficientnet_lite0`` (ImageNet-pretrained).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, encoder: str = "plain", pretrained: bool = True):
        super().__init__()
        self.encoder = encoder
        if encoder == "plain":
            self.unet = UNet(in_channels=in_channels, out_channels=1, base_channels=base_channels)
        else:
            self.unet = PretrainedEncoderUNet(in_channels=in_channels, out_channels=1, base_channels=base_channels, pretrained=pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

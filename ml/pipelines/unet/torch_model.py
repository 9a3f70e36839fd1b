"""The network of the supervised U-Net pipeline: a plain U-Net with a
one-channel logit head (pixel is anomalous)."""
from __future__ import annotations

import torch
from torch import nn

from ml.components.unet import UNet


class UNetSegmenter(nn.Module):
    """``(N, C_in, H, W)`` normalised input -> ``(N, 1, H, W)`` logits.

    ``C_in`` is 3 for the image alone and 6 for image + reconstruction residual
    (thesis 4.1.1, channel-wise concatenation).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16):
        super().__init__()
        self.unet = UNet(in_channels=in_channels, out_channels=1, base_channels=base_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

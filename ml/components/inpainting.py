"""One inpainting U-Net for the inpainting pipelines (``riad``: thesis 2.3.2,
"Image inpainting using an U-Net"; ``smai``: SMAI section 3.1, PEN-Net).

Encoder: five 3x3 stride-2 convolutions with LeakyReLU(0.2) (PEN-Net's
encoder, widths b, 2b, 4b, 8b, 8b). Decoder: nearest-neighbour x2 upsampling,
concatenation with the skip of that level, 3x3 convolution + ReLU, and a last
3x3 convolution on the full-size map concatenated with the input, then a
sigmoid. Each "upsample, concatenate, convolve" step is computed without the
upsampled or concatenated map (:func:`ml.components.upsampling.upsample_concat_conv`,
the same result to float rounding).

With ``attention=True`` the skips pass through PEN-Net's attention transfer
(pyramid-context encoder): region affinities are learned once on the
stride-16 feature map (cosine similarity of 3x3 feature patches, a softmax
over the patches outside the hole, scale 10), and the holes of the stride-16,
8 and 4 maps are filled with the matching patches of that map weighted by
those affinities (the pyramid: one affinity guides every finer level), then
fused by four dilated 3x3 convolutions (rates 1, 2, 4, 8). ``riad`` uses the
plain U-Net (``attention=False``).

Shapes: input ``(N, C_in, S, S)`` (a masked image, optionally with the hole
mask as a fourth channel), S a multiple of 32; output ``(N, 3, S, S)`` in
[0, 1]. The hole mask given to :meth:`InpaintingUNet.forward` is
``(N, 1, S, S)``, 1 inside the hole.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.components.upsampling import upsample_concat_conv


class AttentionTransfer(nn.Module):
    """PEN-Net's attention transfer network (ATN) between two levels of the pyramid."""

    def __init__(self, softmax_scale: float = 10.0):
        super().__init__()
        self.softmax_scale = softmax_scale

    def affinity(self, high: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) features and (N, 1, h, w) hole -> (N, hw, hw) attention of every location
        (row, query) over the locations outside the hole (columns, keys); rows sum to 1."""
        # 3x3 patches as nine shifted copies (F.unfold is slow on channels-last maps).
        h, w = high.shape[-2:]
        padded = F.pad(high, (1, 1, 1, 1))
        shifted = [padded[..., i : i + h, j : j + w] for i in range(3) for j in range(3)]
        patches = F.normalize(torch.cat(shifted, dim=1).flatten(2), dim=1)  # (N, 9C, hw)
        similarity = patches.transpose(1, 2) @ patches
        known = hole.flatten(1) < 0.5  # (N, hw)
        similarity = similarity.masked_fill(~known[:, None, :], -1e4)
        return torch.softmax(self.softmax_scale * similarity, dim=-1)

    @staticmethod
    def transfer(low: torch.Tensor, attention: torch.Tensor, hole: torch.Tensor, grid: int) -> torch.Tensor:
        """Fill the hole of ``low`` (N, C, r*grid, r*grid) with its r x r patches outside the hole,
        weighted by ``attention`` (N, grid^2, grid^2); ``hole`` (N, 1, r*grid, r*grid)."""
        n, c, size = low.shape[0], low.shape[1], low.shape[-1]
        r = size // grid
        # Non-overlapping r x r patches by reshaping (unfold / fold are far slower on CPU).
        values = low.reshape(n, c, grid, r, grid, r).permute(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, grid * grid)
        filled = (values @ attention.transpose(1, 2)).reshape(n, c, r, r, grid, grid)
        filled = filled.permute(0, 1, 4, 2, 5, 3).reshape(n, c, size, size)
        return low * (1 - hole) + filled * hole


class DilatedFusion(nn.Module):
    """Four parallel dilated 3x3 convolutions (rates 1, 2, 4, 8) of C/4 channels each, concatenated."""

    def __init__(self, channels: int):
        super().__init__()
        quarter = max(1, channels // 4)
        self.branches = nn.ModuleList(nn.Conv2d(channels, quarter, 3, padding=d, dilation=d) for d in (1, 2, 4, 8))
        self.out = nn.Conv2d(4 * quarter, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.out(torch.cat([b(x) for b in self.branches], dim=1)), 0.2)


class InpaintingUNet(nn.Module):
    depth = 5
    attention_level = 3  # index of the stride-16 encoder output
    cpu_chunk = 8  # images per pass on CPU without gradients

    def __init__(self, in_channels: int = 4, base_channels: int = 16, attention: bool = True):
        super().__init__()
        b = base_channels
        widths = [b, 2 * b, 4 * b, 8 * b, 8 * b]
        self.in_channels = in_channels
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(nn.Sequential(nn.Conv2d(previous, width, 3, 2, padding=1), nn.LeakyReLU(0.2, inplace=True)))
            previous = width
        # Decoder level l (l = 3 .. 0) upsamples to the size of skip l and outputs widths[l - 1] (b at l = 0).
        self.up = nn.ModuleList()
        for level in reversed(range(self.depth - 1)):
            out = widths[level - 1] if level > 0 else b
            self.up.append(nn.Sequential(nn.Conv2d(previous + widths[level], out, 3, padding=1), nn.ReLU(inplace=True)))
            previous = out
        self.head = nn.Conv2d(previous + in_channels, 3, 3, padding=1)
        self.attention = AttentionTransfer() if attention else None
        # Levels whose holes the attention fills: stride 16 (itself), 8 and 4.
        self.filled_levels = (3, 2, 1) if attention else ()
        self.fusion = nn.ModuleDict({str(level): DilatedFusion(widths[level]) for level in self.filled_levels})
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, S, S), got {tuple(x.shape)}")
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        if not torch.is_grad_enabled() and x.device.type == "cpu" and x.shape[0] > self.cpu_chunk:
            # Without gradients nothing ties the images together: small chunks keep the
            # full-size maps in cache (96 passes at 256 px: 0.64 s in chunks of 8, 0.76 s as one).
            chunks = zip(x.split(self.cpu_chunk), hole.split(self.cpu_chunk) if hole is not None else [None] * x.shape[0])
            return torch.cat([self._forward(part, part_hole) for part, part_hole in chunks])
        return self._forward(x, hole)

    def _forward(self, x: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
        # NHWC lets oneDNN run the convolutions about twice as fast on CPU (measured at 256 px).
        image = x.contiguous()
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        if self.attention is not None:
            if hole is None:
                raise ValueError("the attention transfer needs the hole mask (N, 1, S, S)")
            high = skips[self.attention_level]
            grid = high.shape[-1]
            hole_at = {level: F.adaptive_max_pool2d(hole, skips[level].shape[-2:]) for level in self.filled_levels}
            attention = self.attention.affinity(high, hole_at[self.attention_level])
            for level in self.filled_levels:
                filled = self.attention.transfer(skips[level], attention, hole_at[level], grid)
                skips[level] = self.fusion[str(level)](filled)
        h = skips[-1]
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = torch.relu_(upsample_concat_conv(h, skip, block[0]))
        # The 3-channel head runs faster on the channels-first image (15 -> 11 ms for 8 images).
        return torch.sigmoid_(upsample_concat_conv(h, image, self.head))

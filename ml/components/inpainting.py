"""One inpainting U-Net for the inpainting pipelines (``riad``: thesis 2.3.2,
"Image inpainting using an U-Net"; ``smai``: SMAI section 3.1, PEN-Net).

Encoder: five 3x3 stride-2 convolutions with LeakyReLU(0.2) (PEN-Net's
encoder, widths b, 2b, 4b, 8b, 8b). Decoder: nearest-neighbour x2 upsampling,
concatenation with the skip of that level, 3x3 convolution + ReLU, and a last
3x3 convolution on the full-size map concatenated with the input, then a
sigmoid.

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
    attention_level = 3
    inference_chunk = 8  # images per pass on CPU without gradients  # index of the stride-16 encoder output

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
        if not torch.is_grad_enabled() and x.device.type == "cpu" and x.shape[0] > self.inference_chunk:
            # Without gradients nothing ties the images together: small chunks keep the
            # full-size maps in cache (96 passes at 256 px: 0.64 s in chunks of 8, 0.76 s as one).
            chunks = zip(x.split(self.inference_chunk), hole.split(self.inference_chunk) if hole is not None else [None] * x.shape[0])
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


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel (O, I, 3, 3) meant for a map upsampled x2 by nearest neighbour -> four
    2x2 kernels (4 O, I, 2, 2) that give the same result on the map before upsampling,
    output channel (2 a + b) * O + o for channel o at row phase a and column phase b.

    Output row 2i + a of the upsampled map reads upsampled rows 2i + a - 1 .. 2i + a + 1,
    i.e. source rows (i - 1, i, i) when a = 0 and (i, i, i + 1) when a = 1: taps that land
    on one source row add up, leaving two rows (and likewise two columns) per phase.
    """

    def fold(w: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        w0, w1, w2 = w.unbind(axis)
        return torch.stack([w0, w1 + w2], axis), torch.stack([w0 + w1, w2], axis)

    phases = [column for rows in fold(weight, 2) for column in fold(rows, 3)]
    return torch.cat(phases)


def _cached_phase_kernels(conv: nn.Conv2d, channels: int) -> torch.Tensor:
    """:func:`_phase_kernels` of the first ``channels`` input channels of ``conv``; without
    gradients, kept on the module until its weight changes (optimizer steps bump the version)."""
    weight = conv.weight
    if torch.is_grad_enabled():
        return _phase_kernels(weight[:, :channels])
    key = (weight._version, weight.data_ptr(), weight.device, weight.dtype, channels)
    cached = conv.__dict__.get("_phase_cache")
    if cached is None or cached[0] != key:
        cached = (key, _phase_kernels(weight[:, :channels]).contiguous())
        conv.__dict__["_phase_cache"] = cached
    return cached[1]


def upsample_concat_conv(h: torch.Tensor, skip: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(cat([nearest_upsample(h, to skip's size), skip]))`` without building either map.

    The 3x3 convolution is linear, so it splits into its part on the upsampled ``h`` and
    its part on ``skip``. The first runs at ``h``'s own resolution: one 2x2 convolution of
    the zero-padded ``h`` with the four phase kernels of :func:`_phase_kernels` gives, at
    (i + a, j + b), the output pixel (2i + a, 2j + b), added into every other row and
    column of the skip part's result. Same result to float rounding with 4/9 of that part's multiplications and no
    upsampled or concatenated map: upsampling and concatenation were 40% of an inpainting
    pass on CPU. (Zero padding of the upsampled map is zero padding of ``h``, so the
    borders match too.)
    """
    c = h.shape[1]
    if skip.shape[-2:] != (2 * h.shape[-2], 2 * h.shape[-1]) or conv.kernel_size != (3, 3) or conv.padding != (1, 1):
        up = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
        return conv(torch.cat([up, skip], dim=1))
    rows, cols = h.shape[-2:]
    out = conv.out_channels
    # A 2x2 kernel with padding 1 reads the zero-padded h: (N, 4 O, rows + 1, cols + 1), the
    # phase (a, b) in channels (2 a + b) O .. + O, its output pixel (2i + a, 2j + b) at (i + a, j + b).
    phased = F.conv2d(h, _cached_phase_kernels(conv, c), padding=1)
    result = F.conv2d(skip, conv.weight[:, c:], conv.bias, padding=1)
    for a in range(2):
        for b in range(2):
            phase = phased[:, (2 * a + b) * out : (2 * a + b + 1) * out, a : a + rows, b : b + cols]
            result[:, :, a::2, b::2] += phase
    return result

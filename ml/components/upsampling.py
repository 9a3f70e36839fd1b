"""Nearest-neighbour x2 upsampling followed by a convolution, computed at the coarse
resolution (decoders of ``riad`` / ``smai``'s inpainting U-Net and ``utad``'s
style-transfer network).

A k x k convolution (k odd, zero padding k // 2) of a map upsampled x2 by
nearest neighbour reads, for output row 2i + a, upsampled rows 2i + a - p ..
2i + a + p (p = k // 2), which are source rows i + floor((a + d) / 2) for d in
-p .. p: only p + 1 distinct source rows, the taps that land on one row adding
up. So each of the four output phases (a, b) is a (p + 1) x (p + 1)
convolution of the source map, and all four are one convolution with 4 x the
output channels (:func:`phase_kernels`), whose results are added into every
other row and column of the output. The same result to float rounding with
((p + 1) / k)^2 of the multiplications (4/9 for 3x3, 9/25 for 5x5) and without
the upsampled map; zero padding of the upsampled map is zero padding of the
source, so the borders match too.

Measured on 2 CPU cores at 256 px: upsampling and concatenation were 40% of an
inpainting U-Net pass; the style-transfer decoders' two 5x5 convolutions of
upsampled maps half of a utad pass.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _taps(a: int, p: int) -> tuple[int, list[list[int]]]:
    """Phase ``a``: its first source offset, and for each of its p + 1 taps the original
    kernel taps (0 .. 2p) that fall on that source row."""
    first = (a - p) // 2
    groups: list[list[int]] = [[] for _ in range(p + 1)]
    for d in range(-p, p + 1):
        groups[(a + d) // 2 - first].append(d + p)
    return first, groups


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """(O, I, k, k) kernel meant for a map upsampled x2 -> (4 O, I, p + 1, p + 1): output
    channel (2 a + b) O + o is channel o at row phase a and column phase b."""
    p = weight.shape[-1] // 2

    def fold(w: torch.Tensor, axis: int) -> list[torch.Tensor]:
        taps = w.unbind(axis)
        phases = []
        for a in range(2):
            _, groups = _taps(a, p)
            phases.append(torch.stack([sum(taps[t] for t in group) for group in groups], axis))
        return phases

    return torch.cat([column for rows in fold(weight, 2) for column in fold(rows, 3)])


def _cached_phase_kernels(conv: nn.Conv2d, channels: int) -> torch.Tensor:
    """:func:`phase_kernels` of the first ``channels`` input channels of ``conv``; without
    gradients, kept on the module until its weight changes (optimizer steps and
    ``load_state_dict`` bump the version)."""
    weight = conv.weight
    if torch.is_grad_enabled():
        return phase_kernels(weight[:, :channels])
    key = (weight._version, weight.data_ptr(), weight.device, weight.dtype, channels)
    cached = conv.__dict__.get("_phase_cache")
    if cached is None or cached[0] != key:
        cached = (key, phase_kernels(weight[:, :channels]).contiguous())
        conv.__dict__["_phase_cache"] = cached
    return cached[1]


def _applies(h: torch.Tensor, size: tuple[int, int], conv: nn.Conv2d) -> bool:
    k = conv.kernel_size
    return (
        tuple(size) == (2 * h.shape[-2], 2 * h.shape[-1])
        and k[0] == k[1] and k[0] % 2 == 1
        and conv.padding == (k[0] // 2, k[0] // 2)
        and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def _upsampled_part(result: torch.Tensor, h: torch.Tensor, conv: nn.Conv2d, channels: int, add: bool) -> torch.Tensor:
    """Write (``add=False``: with the bias) or add (``add=True``: without) the convolution of
    nearest-upsampled ``h``, the first ``channels`` input channels of ``conv``, into
    ``result`` (N, O, 2 rows, 2 cols), in place; the four phases cover every pixel once."""
    p = conv.kernel_size[0] // 2
    rows, cols = h.shape[-2:]
    out = conv.out_channels
    pad = -((0 - p) // 2)  # the source rows phase 0 reaches above row 0
    bias = None if add or conv.bias is None else conv.bias.repeat(4)
    phased = F.conv2d(h, _cached_phase_kernels(conv, channels), bias, padding=pad)
    for a in range(2):
        row = _taps(a, p)[0] + pad
        for b in range(2):
            col = _taps(b, p)[0] + pad
            phase = (2 * a + b) * out
            part = phased[:, phase : phase + out, row : row + rows, col : col + cols]
            target = result[:, :, a::2, b::2]
            target.add_(part) if add else target.copy_(part)
    return result


def upsample_conv(h: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(nearest_upsample_x2(h))`` without the upsampled map."""
    size = (2 * h.shape[-2], 2 * h.shape[-1])
    if not _applies(h, size, conv):
        return conv(F.interpolate(h, scale_factor=2, mode="nearest"))
    channels_last = h.is_contiguous(memory_format=torch.channels_last) and h.shape[1] > 1
    result = torch.empty(
        (h.shape[0], conv.out_channels, *size), dtype=h.dtype, device=h.device,
        memory_format=torch.channels_last if channels_last else torch.contiguous_format,
    )
    return _upsampled_part(result, h, conv, h.shape[1], add=False)


def upsample_concat_conv(h: torch.Tensor, skip: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(cat([nearest_upsample_x2(h), skip]))`` (a U-Net decoder step) without building
    either map: the convolution is linear, so it splits into its part on ``skip`` (run as
    is) and its part on the upsampled ``h`` (run at ``h``'s resolution)."""
    c = h.shape[1]
    if not _applies(h, skip.shape[-2:], conv):
        up = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
        return conv(torch.cat([up, skip], dim=1))
    p = conv.padding
    result = F.conv2d(skip, conv.weight[:, c:], conv.bias, padding=p)
    return _upsampled_part(result, h, conv, c, add=True)


def _is_nearest_x2(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Upsample)
        and module.mode == "nearest"
        and module.size is None
        and module.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0))
    )


def run_sequential(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)``, with every nearest x2 ``nn.Upsample`` that a ``nn.Conv2d`` follows run
    as :func:`upsample_conv` (the module and its saved weights stay as they are)."""
    modules = list(layers)
    i = 0
    while i < len(modules):
        module = modules[i]
        if _is_nearest_x2(module) and i + 1 < len(modules) and isinstance(modules[i + 1], nn.Conv2d):
            x = upsample_conv(x, modules[i + 1])
            i += 2
            continue
        x = module(x)
        i += 1
    return x

"""Structural similarity (SSIM) as a per-pixel map, for reconstruction losses,
metrics and anomaly maps (thesis 5.1: the SSIM of Table 5.1; Wang et al. 2004).

Gaussian window (11 x 11, sigma 1.5), constants ``C1 = (0.01 L)^2`` and
``C2 = (0.03 L)^2`` for data range ``L = 1``; borders are reflected so the map
keeps the input size.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

_C1 = 0.01**2
_C2 = 0.03**2


def _window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM of ``a`` and ``b`` (N, C, H, W) in [0, 1] -> (N, 1, H, W), averaged over channels.

    1 where the two images agree locally; lower where structure, contrast or
    luminance differ.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    c = a.shape[1]
    a, b = a.float(), b.float()
    w = _window(window, sigma, c, a)
    pad = min(window // 2, a.shape[-1] - 1, a.shape[-2] - 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad > 0 else x
        out = F.conv2d(x, w, groups=c)
        # A tiny image (smaller than the window) gives a smaller map: bring it back to size.
        if out.shape[-2:] != a.shape[-2:]:
            out = F.interpolate(out, size=a.shape[-2:], mode="bilinear", align_corners=False)
        return out

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return s.mean(dim=1, keepdim=True)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image: (N, C, H, W) pairs -> (N,)."""
    return ssim_map(a, b).flatten(1).mean(dim=1)

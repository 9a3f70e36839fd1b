"""Pre- and post-processing shared by the feature-based pipelines.

Images enter as (H, W, 3) uint8 RGB arrays of any size; the pipelines work on
(N, 3, S, S) float tensors in [0, 1] at the working resolution ``S``, and hand
back anomaly maps at each input's own resolution.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ml.data.io import resize_image
from ml.data.transforms import to_tensor


def batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def images_to_tensor(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """(H, W, 3) uint8 images -> (N, 3, size, size) float32 in [0, 1] (area filter when shrinking)."""
    return to_tensor([resize_image(image, size) for image in images])


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian, radius 4 sigma (kernel 2*int(4*sigma+0.5)+1 as in common practice)."""
    radius = int(4.0 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, H, W) maps with reflected borders; sigma <= 0 returns them unchanged."""
    if sigma <= 0:
        return maps
    kernel = gaussian_kernel1d(sigma).to(maps.device, maps.dtype)
    radius = kernel.numel() // 2
    x = maps.unsqueeze(1)
    # Reflection needs the pad smaller than the map; clamp for tiny maps.
    pad_h = min(radius, x.shape[-2] - 1)
    pad_w = min(radius, x.shape[-1] - 1)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w > 0 else x
    x = F.conv2d(x, kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect") if pad_h > 0 else x
    x = F.conv2d(x, kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1))
    return x.squeeze(1)


def upsample(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, h, w) maps to ``size``."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def maps_to_input_sizes(maps: torch.Tensor, images: Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """(N, S, S) maps at working resolution -> float32 maps at each image's (H, W), bilinear.

    When the images share one size (the usual batch) this is one interpolation
    and one device-to-host copy for the whole batch, giving an (N, H, W) array;
    otherwise a list of (H_i, W_i) arrays.
    """
    sizes = {image.shape[:2] for image in images}
    if len(sizes) == 1:
        return upsample(maps.float(), sizes.pop()).cpu().numpy().astype(np.float32, copy=False)
    out = []
    for m, image in zip(maps, images):
        h, w = image.shape[:2]
        out.append(upsample(m.unsqueeze(0).float(), (h, w))[0].cpu().numpy().astype(np.float32, copy=False))
    return out


def join_maps(parts: Sequence[np.ndarray | list[np.ndarray]]) -> np.ndarray | list[np.ndarray]:
    """Per-batch results of :func:`maps_to_input_sizes` -> one (N, H, W) array when every
    map has one size (a single copy), else one list of (H_i, W_i) arrays."""
    if parts and all(isinstance(p, np.ndarray) and p.shape[1:] == parts[0].shape[1:] for p in parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return [m for part in parts for m in part]


def align_to_grid(feature: torch.Tensor, grid: int) -> torch.Tensor:
    """Bring an (N, C, h, w) map onto a (grid, grid) lattice.

    Finer maps are averaged over each cell, coarser maps are repeated
    (nearest neighbour). For integer ratios this equals DFR's "resize to the
    input size by nearest neighbour, then mean filter k x k with stride k"
    (section IV-A 3), without materialising the full-resolution map.
    """
    h = feature.shape[-1]
    if h == grid:
        return feature
    if h > grid:
        if h % grid == 0:
            factor = h // grid
            return F.avg_pool2d(feature, factor, factor)
        return F.adaptive_avg_pool2d(feature, grid)
    return F.interpolate(feature, size=(grid, grid), mode="nearest")


def random_projection(in_dim: int, out_dim: int, seed: int) -> torch.Tensor:
    """Gaussian (in_dim, out_dim) matrix scaled to roughly preserve distances (Johnson-Lindenstrauss)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(in_dim, out_dim, generator=generator) / math.sqrt(out_dim)

"""Resizing and input normalisation presets on torch tensors.

``to_tensor`` turns (H, W, 3) uint8 images into an (N, 3, H, W) float32
batch in [0, 1]; the presets then map [0, 1] to what a backbone was trained on:

- ``imagenet``: ``(x - mean) / std`` with the ImageNet statistics (torchvision models);
- ``efficientnet_lite``: ``(x * 255 - 127) / 128`` (the TFLite EfficientNet-Lite weights);
- ``unit``: unchanged [0, 1].
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 image(s) of one size -> (N, 3, H, W) float32 in [0, 1]."""
    if isinstance(images, np.ndarray):
        array = images[None] if images.ndim == 3 else images
    else:
        array = np.stack(list(images))
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) images or an (N, H, W, 3) array, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float().div_(255.0)


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, size) bilinear, antialiased when shrinking."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_masks(masks: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(N, 1, H, W) masks -> (N, 1, size) by nearest neighbour, so they stay binary."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(masks.shape[-2:]) == size:
        return masks
    return F.interpolate(masks.float(), size=size, mode="nearest")


def normalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def normalize_efficientnet_lite(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0 - 127.0) / 128.0


def normalize_unit(x: torch.Tensor) -> torch.Tensor:
    return x


PRESETS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "imagenet": normalize_imagenet,
    "efficientnet_lite": normalize_efficientnet_lite,
    "unit": normalize_unit,
}


def normalize(x: torch.Tensor, preset: str) -> torch.Tensor:
    """Apply a named preset to an (N, 3, H, W) batch in [0, 1]."""
    try:
        return PRESETS[preset](x)
    except KeyError:
        raise ValueError(f"unknown normalisation {preset!r}; known: {', '.join(PRESETS)}") from None


def prepare(images: Sequence[np.ndarray], size: int | tuple[int, int], preset: str) -> torch.Tensor:
    """Images of any sizes -> one normalised (N, 3, size) batch."""
    return normalize(torch.cat([resize(to_tensor(image), size) for image in images]), preset)

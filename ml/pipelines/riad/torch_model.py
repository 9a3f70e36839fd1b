"""RIAD (thesis 2.3.2, figure 2.8): complementary grid masks and the inpainting U-Net.

Each training image is inpainted at a cell size k drawn from the configured
sizes: the (S/k)^2 cells of a k x k grid are split at random into three
disjoint sets of (nearly) equal size, each set masks one copy of the image,
the U-Net (:class:`ml.components.inpainting.InpaintingUNet` without attention)
fills the three copies, and the rebuild keeps from each output only the cells
that copy was missing, so every pixel comes from an inpainting.
"""
from __future__ import annotations

import torch
from torch import nn

from ml.components.inpainting import InpaintingUNet


def complementary_grid_masks(size: int, cell: int, generator: torch.Generator | None = None, parts: int = 3) -> torch.Tensor:
    """``parts`` binary (size, size) masks, 1 = removed, of a random split of the ``cell`` x ``cell``
    grid into ``parts`` disjoint sets; together they cover every pixel exactly once -> (parts, 1, size, size)."""
    cells = -(-size // cell)
    order = torch.randperm(cells * cells, generator=generator)
    group = torch.empty(cells * cells, dtype=torch.long)
    group[order] = torch.arange(cells * cells) % parts
    grid = group.view(cells, cells).repeat_interleave(cell, 0).repeat_interleave(cell, 1)[:size, :size]
    return torch.stack([(grid == p).float() for p in range(parts)]).unsqueeze(1)


class RIADModel(nn.Module):
    def __init__(self, base_channels: int = 16):
        super().__init__()
        self.unet = InpaintingUNet(in_channels=3, base_channels=base_channels, attention=False)

    def rebuild(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) images and (P, 1, S, S) complementary masks -> (N, 3, S, S): each masked
        copy inpainted, the removed cells of each copy taken from its inpainting."""
        n, p = x.shape[0], masks.shape[0]
        masks = masks.to(x.device, x.dtype)
        copies = (x.unsqueeze(0) * (1 - masks.unsqueeze(1))).flatten(0, 1)  # (P*N, 3, S, S)
        out = self.unet(copies).view(p, n, *x.shape[1:])
        return (out * masks.unsqueeze(1)).sum(dim=0)

    forward = rebuild

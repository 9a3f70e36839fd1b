"""Residual maps of a reconstruction: squared error (AE-L2) or 1 - SSIM (AE-SSIM)."""
from __future__ import annotations

import torch

from ml.components.ssim import ssim_map


def residual_map(x: torch.Tensor, reconstruction: torch.Tensor, kind: str, ssim_window: int = 11) -> torch.Tensor:
    """(N, 3, S, S) image and reconstruction -> (N, S, S): per-pixel squared error summed over
    channels (``l2``) or 1 - SSIM (``ssim``, Bergmann et al.; SMAI eq. 2)."""
    if kind == "l2":
        return (x - reconstruction).pow(2).sum(dim=1)
    return 1.0 - ssim_map(x, reconstruction, ssim_window)

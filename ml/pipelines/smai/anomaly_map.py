"""SMAI's anomaly map, eq. 2-3: the sum over the masking passes of 1 - SSIM (or the squared
error) between the restoration and the image, each taken over that pass's masked region."""
from __future__ import annotations

import torch

from ml.components.ssim import ssim_map


def region_error(x: torch.Tensor, restored: torch.Tensor, hole: torch.Tensor, kind: str) -> torch.Tensor:
    """(P, 3, S, S) images, their restorations and (P, 1, S, S) holes -> (P, S, S) error inside each hole, 0 outside."""
    if kind == "l2":
        error = (x - restored).pow(2).sum(dim=1)
    else:
        error = 1.0 - ssim_map(x, restored)
    return error * hole[:, 0]

"""RIAD's anomaly map, thesis eq. 2.8-2.9."""
from __future__ import annotations

import torch

from ml.components.ssim import mean_filter, msgms_map


def riad_map(x: torch.Tensor, rebuilds: list[torch.Tensor], smoothing: int) -> torch.Tensor:
    """(N, 3, S, S) image and its rebuild at each cell size -> (N, S, S):
    mean over the sizes of 1 - (MSGMS(x, rebuild) * mean filter s_f)."""
    maps = [1.0 - mean_filter(msgms_map(x, r), smoothing) for r in rebuilds]
    return torch.stack(maps).mean(dim=0)

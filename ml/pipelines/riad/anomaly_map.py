"""RIAD's anomaly map, thesis eq. 2.8-2.9."""
from __future__ import annotations

import torch

from ml.components.ssim import mean_filter, msgms_map


def riad_map(x: torch.Tensor, rebuilds: list[torch.Tensor], smoothing: int) -> torch.Tensor:
    """(N, 3, S, S) image and its rebuild at each cell size -> (N, S, S):
    mean over the sizes of 1 - (MSGMS(x, rebuild) * mean filter s_f).

    The mean filter is linear and keeps constants, so the mean over the sizes of
    1 - f(MSGMS_k) is 1 - f(mean of MSGMS_k): one filtering instead of one per size.
    """
    similarity = sum(msgms_map(x, rebuild) for rebuild in rebuilds) / len(rebuilds)
    return 1.0 - mean_filter(similarity, smoothing)

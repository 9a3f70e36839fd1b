"""RIAD's training objective, thesis eq. 2.7: L = lambda_1 L_MSGMS + lambda_2 L_SSIM + L_MSE."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.components.ssim import msgms_loss, ssim_loss


def riad_loss(x: torch.Tensor, rebuild: torch.Tensor, lambda_msgms: float, lambda_ssim: float) -> torch.Tensor:
    return F.mse_loss(rebuild, x) + lambda_msgms * msgms_loss(x, rebuild) + lambda_ssim * ssim_loss(x, rebuild)

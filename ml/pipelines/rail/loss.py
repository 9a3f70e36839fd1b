"""Losses of the rail segmentation stage (rail-two-stage-anomaly.txt, section III-A).

Both take logits ``(N, 1, H, W)`` and targets ``(N, 1, H, W)`` in {0, 1} and average over pixels.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, w0: float = 0.2, w1: float = 0.8) -> torch.Tensor:
    """Eq. 1: ``-1/(W H) sum( w1 I log P + w0 (1 - I) log(1 - P) )`` with the paper's w0 = 0.2
    (background) and w1 = 0.8 (rail), which weighs the rare rail pixels up."""
    logits, target = logits.float(), target.float()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    return -(w1 * target * log_p + w0 * (1 - target) * log_not_p).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.8, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 2 (Lin et al.'s focal loss): ``-alpha_t (1 - p_t)^gamma log p_t``, alpha for rail
    pixels and 1 - alpha for the background; the paper's best run uses alpha 0.8, gamma 2 (Table I)."""
    logits, target = logits.float(), target.float()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    log_pt = target * log_p + (1 - target) * log_not_p
    pt = log_pt.exp()
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return -(alpha_t * (1 - pt).pow(gamma) * log_pt).mean()

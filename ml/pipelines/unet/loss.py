"""Losses of the supervised U-Net (thesis eq. 4.1, 5.9, 5.10, 5.11).

All take logits ``(N, 1, H, W)`` and targets ``(N, 1, H, W)`` in {0, 1}.
Dice and IoU are "soft": computed on sigmoid probabilities over the whole
batch at once, so that batches of normal images (empty masks) still give a
defined loss (0 when the prediction is empty too) instead of 0/0 per image.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_SMOOTH = 1.0  # pixels; keeps empty-vs-empty at loss 0 and gradients finite


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - 2|P∩Y| / (|P| + |Y|)`` with soft sets (eq. 5.9)."""
    p = torch.sigmoid(logits.float())
    y = target.float()
    intersection = (p * y).sum()
    return 1.0 - (2.0 * intersection + _SMOOTH) / (p.sum() + y.sum() + _SMOOTH)


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - |P∩Y| / |P∪Y|`` with soft sets (eq. 5.10)."""
    p = torch.sigmoid(logits.float())
    y = target.float()
    intersection = (p * y).sum()
    union = p.sum() + y.sum() - intersection
    return 1.0 - (intersection + _SMOOTH) / (union + _SMOOTH)


def consistency_loss(logits: torch.Tensor, logits_of_transformed_restored: torch.Tensor) -> torch.Tensor:
    """Eq. 5.11, ``UNet(x) - T^-1(UNet(T(x)))``, as the mean squared difference
    of the two probability maps (the thesis gives the difference; squaring
    makes it a loss)."""
    return F.mse_loss(torch.sigmoid(logits.float()), torch.sigmoid(logits_of_transformed_restored.float()))


class SegmentationLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * Dice + iou_weight * IoU``.

    ``forward`` returns the total and a dict of the (unweighted) terms as floats
    for progress reports.
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, iou_weight: float = 1.0):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.iou_weight = iou_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same shape")
        bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
        dice = soft_dice_loss(logits, target)
        iou = soft_iou_loss(logits, target)
        total = self.bce_weight * bce + self.dice_weight * dice + self.iou_weight * iou
        return total, {"bce": float(bce.detach()), "dice": float(dice.detach()), "iou": float(iou.detach())}

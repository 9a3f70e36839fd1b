"""The anomaly map of the two-stage method: feature distances at several levels of a
pretrained network, combined by product (eq. 4.21) or sum (eq. 4.19)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ml.components.features import upsample


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """phi_l: mean absolute difference over channels of two (N, C, h, w) feature maps -> (N, h, w)."""
    return (a - b).abs().mean(dim=1)


def error_map(levels: Mapping[str, torch.Tensor], n: int, size: int, combine: str, weights: Sequence[float] | None = None) -> torch.Tensor:
    """``levels``: layer -> features of the stacked batch [x; x^; m; m^] (4n, C_l, h_l, w_l).

    Per level: phi(x, x^) + phi(m, m^) + phi(x, m), weighted by lambda_l and
    upsampled to ``size``; then the product over levels (eq. 4.21) or the sum
    (eq. 4.19) -> (n, size, size).
    """
    weights = list(weights) if weights is not None else [1.0] * len(levels)
    combined = None
    for weight, f in zip(weights, levels.values()):
        x, x_hat, m, m_hat = f.float().split(n)
        e = weight * upsample(feature_distance(x, x_hat) + feature_distance(m, m_hat) + feature_distance(x, m), size)
        if combined is None:
            combined = e
        else:
            combined = combined * e if combine == "product" else combined + e
    return combined

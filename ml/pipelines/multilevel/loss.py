"""Loss of the multi-level patch model (thesis eq. 4.5): ``MSE_SUM + KL_SUM + alpha * BCE_SUM``.

Per patch: squared error summed over the 33x33x3 reconstruction (eq. 4.4), KL
divergence summed over the latent dimensions (eq. 4.3), binary cross-entropy
of the centre pixel's label (eq. 4.2); the batch loss is the mean of each
term over its patches (the thesis' sums over a batch, divided by its size).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ml.components.variational import kl_sum


def multilevel_loss(logits, labels, reconstruction, target, mu, logvar, alpha: float) -> tuple[torch.Tensor, dict[str, float]]:
    """``logits``, ``labels``: (K,) patches classified; ``mu``, ``logvar``: (K, M); ``reconstruction``,
    ``target``: (D, 3, 33, 33) for the first D <= K of them (the decoder regularises; decoding every
    classified patch would only cost time). Each term is a per-patch sum averaged over its patches."""
    mse = (reconstruction.float() - target.float()).pow(2).flatten(1).sum(dim=1)
    kl = kl_sum(mu.float(), logvar.float())
    bce = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    total = mse.mean() + kl.mean() + alpha * bce.mean()
    return total, {"mse": float(mse.mean().detach()), "kl": float(kl.mean().detach()), "bce": float(bce.mean().detach())}

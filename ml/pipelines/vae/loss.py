"""Loss of the thesis' VAE (eq. 4.10): ``reconstruction_SUM + alpha * KL_SUM``.

The reconstruction term is MSE_SUM (eq. 4.4) by default, or the L1 sum or the
SSIM error compared in Table 5.1. Sums run over the pixels and latent
dimensions of each image; the batch loss is their mean over images (so the
balance of the two terms is the thesis' and the step size does not depend on
the batch size).
"""
from __future__ import annotations

import torch

from ml.components.ssim_map import ssim_map
from ml.components.variational import kl_sum


def reconstruction_sum(kind: str, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) pair -> (N,) per-image sum of the reconstruction error of ``kind``."""
    diff = reconstruction.float() - target.float()
    if kind == "mse":
        return diff.pow(2).flatten(1).sum(dim=1)
    if kind == "l1":
        return diff.abs().flatten(1).sum(dim=1)
    if kind == "ssim":
        # SSIM error summed over pixels (x C, to stay on the scale of the other two sums).
        return (1.0 - ssim_map(reconstruction, target)).flatten(1).sum(dim=1) * target.shape[1]
    raise ValueError(f"unknown reconstruction loss {kind!r}; known: mse, l1, ssim")


def vae_loss(kind: str, alpha: float, reconstruction: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 4.10 averaged over the batch; also the two terms as floats."""
    rec = reconstruction_sum(kind, reconstruction, target)
    kl = kl_sum(mu.float(), logvar.float())
    total = (rec + alpha * kl).mean()
    return total, {"reconstruction": float(rec.mean().detach()), "kl": float(kl.mean().detach())}

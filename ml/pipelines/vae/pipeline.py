"""``vae`` pipeline: training on normal images, residual anomaly maps, threshold
calibration, save/load (thesis 3.3, 4.2.1, 5.1).

Pre-processing: images are resized to ``image_size`` (area filter) and scaled
to [0, 1]; no mean/std normalisation, since the decoder's sigmoid reconstructs
[0, 1] pixels. Anomaly map: the residual between an image and its
reconstruction (the mean), either the mean absolute difference over RGB
(``l1``) or ``1 - SSIM`` (``ssim``), smoothed by ``blur_sigma`` and resized
bilinearly to each input's size. Image score: the map's maximum.

The artifact's ``meta`` carries the reconstruction L1, MSE and SSIM of Table
5.1, measured on the validation images the training held back (or, without
any, on the training images).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate, validation_evidence
from ml.components.features import batches, gaussian_blur, images_to_tensor, maps_to_input_sizes
from ml.components.runtime import resolve_device, seed_everything
from ml.components.ssim_map import ssim, ssim_map
from ml.components.training import Trainer, epoch_batches, to_device
from ml.data.splits import hold_out_validation, is_anomalous
from ml.pipelines.vae.config import DESCRIPTION, SUPERVISION, VAEConfig
from ml.pipelines.vae.loss import vae_loss
from ml.pipelines.vae.torch_model import VariationalAutoencoder
from ml.registry import register


def is_normal(sample: Sample) -> bool:
    """Known to be normal: labelled normal, or unlabelled with a mask that has no anomalous pixel."""
    if sample.label == 0:
        return True
    return sample.label is None and sample.mask is not None and not is_anomalous(sample)


@register
class VAEPipeline(Pipeline):
    name = "vae"
    supervision = SUPERVISION
    config_class = VAEConfig
    description = DESCRIPTION

    config: VAEConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.device = resolve_device(self.config.device)
        self.model = self._build_model()

    def _build_model(self) -> VariationalAutoencoder:
        cfg = self.config
        return VariationalAutoencoder(cfg.image_size, cfg.latent_dim, cfg.encoder_channels(), cfg.dropout).to(self.device)

    def _tensor(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (N, 3, S, S) of the images at working size (kept small on the host)."""
        return images_to_tensor(images, self.config.image_size).mul_(255.0).round_().to(torch.uint8)

    # --- learning ----------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Learn to reconstruct the normal ``train`` images (anomalous ones are left out) with the
        shared training loop; the validation measure is the loss (eq. 4.10) on normal validation
        images, the job's or held back from ``train``."""
        cfg = self.config
        normal = [s for s in train if s.label != 1 and not is_anomalous(s)]
        if not normal:
            raise ValueError(f"the vae learns from normal images; none of the {len(train)} training samples is normal")
        check_images([s.image for s in normal])
        generator = seed_everything(cfg.seed)
        self.model = self._build_model()
        normal, val, source = hold_out_validation(
            normal, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=is_normal
        )
        images = self._tensor([s.image for s in normal])
        normal_val = [s.image for s in val if source == "held back" or is_normal(s)]
        val_images = self._tensor(normal_val) if normal_val else None
        n = len(images)
        progress("prepare", 1.0, {"train_images": float(n), "validation_images": float(len(normal_val))})

        trainer = Trainer(
            cfg, self.model, device=self.device, steps_per_epoch=math.ceil(n / cfg.batch_size),
            progress=progress, measure="val_loss", higher_is_better=False, validation_source=source,
        )
        order = epoch_batches(n, cfg.batch_size, generator)

        def train_step(step: int) -> dict[str, float]:
            x = to_device(images[next(order)], self.device).float().div_(255.0)
            reconstruction, mu, logvar = self.model(x)
            loss, terms = vae_loss(cfg.reconstruction_loss, cfg.kl_weight, reconstruction, x, mu, logvar)
            return {"loss": trainer.backward_step(loss), **terms}

        def validate() -> float:
            total = 0.0
            for chunk in batches(val_images, cfg.batch_size):
                x = to_device(chunk, self.device).float().div_(255.0)
                reconstruction, mu, logvar = self.model(x)
                total += float(vae_loss(cfg.reconstruction_loss, cfg.kl_weight, reconstruction, x, mu, logvar)[0]) * len(chunk)
            return total / len(val_images)

        report = trainer.fit(train_step, validate if val_images is not None else None)
        self.model.eval()
        self.meta.update(
            {"train_images": n, "validation_images": len(normal_val), "training": report.to_dict(), "fit_seconds": report.seconds}
        )
        self.meta["reconstruction"] = self.reconstruction_quality(val_images if val_images is not None else images)
        self._calibrate(images, val, progress)

    @torch.inference_mode()
    def reconstruction_quality(self, images_u8: torch.Tensor) -> dict[str, float]:
        """Table 5.1's measures over (N, 3, S, S) uint8 images: mean L1, MSE (per pixel and channel) and SSIM."""
        self.model.eval()
        l1 = mse = s = 0.0
        for chunk in batches(images_u8, self.config.batch_size):
            x = to_device(chunk, self.device).float().div_(255.0)
            r = self.reconstruct_tensor(x)
            l1 += float((r - x).abs().flatten(1).mean(1).sum())
            mse += float((r - x).pow(2).flatten(1).mean(1).sum())
            s += float(ssim(r, x).sum())
        n = max(1, len(images_u8))
        return {"l1": l1 / n, "mse": mse / n, "ssim": s / n}

    def _calibrate(self, train_images: torch.Tensor, val: Sequence[Sample], progress: ProgressFn) -> None:
        """Threshold per ``threshold_policy`` from the validation images (normal ones, and annotated ones
        when the job gives them), else from the maps of the normal training images."""
        evidence = validation_evidence(self, val)
        if evidence is not None:
            maps, masks = evidence
        else:
            with torch.inference_mode():
                maps = [m.cpu().numpy() for chunk in batches(train_images, self.config.batch_size) for m in self._working_maps(chunk)]
            masks = [None] * len(maps)
        calibrate(self, maps, masks)
        progress("calibrate", 1.0, {"threshold": float(self.threshold)} if self.threshold is not None else None)

    # --- reconstruction and maps ---------------------------------------------------------
    @torch.inference_mode()
    def reconstruct_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] on the model's device -> reconstructions (N, 3, S, S) in [0, 1]."""
        self.model.eval()
        return self.model(x.float())[0].float()

    @torch.inference_mode()
    def reconstruct(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) uint8 images -> (N, 3, S, S) float reconstructions in [0, 1] (CPU), S = ``image_size``."""
        check_images(images)
        out = [self.reconstruct_tensor(to_device(chunk, self.device).float().div_(255.0)).cpu() for chunk in batches(self._tensor(images), self.config.batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 3, self.config.image_size, self.config.image_size)

    def residual_maps(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) image and reconstruction -> (N, S, S) residual per ``anomaly_map``."""
        if self.config.anomaly_map == "ssim":
            return (1.0 - ssim_map(reconstruction, x))[:, 0]
        return (reconstruction - x).abs().mean(dim=1)

    def _working_maps(self, images_u8: torch.Tensor) -> torch.Tensor:
        x = to_device(images_u8, self.device).float().div_(255.0)
        return gaussian_blur(self.residual_maps(x, self.reconstruct_tensor(x)), self.config.blur_sigma)

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        self.model.eval()
        maps: list[np.ndarray] = []
        for chunk in batches(list(images), self.config.batch_size):
            maps.extend(maps_to_input_sizes(self._working_maps(self._tensor(chunk)), chunk))
        return self._predictions([float(m.max()) for m in maps], maps)

    # --- persistence ---------------------------------------------------------------------
    def state_tensors(self) -> dict:
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def load_state_tensors(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()

"""DFR pipeline: regional features, PCA latent size, autoencoder training,
anomaly maps, threshold calibration, save/load."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate, validation_evidence
from ml.components.features import (
    batches,
    gaussian_blur,
    images_to_tensor,
    join_maps,
    maps_to_input_sizes,
    upsample,
)
from ml.components.runtime import autocast, resolve_device, seed_everything
from ml.components.training import Trainer, epoch_batches
from ml.data.splits import hold_out_validation, is_anomalous
from ml.pipelines.dfr.config import DESCRIPTION, SUPERVISION, DFRConfig
from ml.pipelines.dfr.torch_model import DFRModel, reconstruction_error
from ml.registry import register


def _is_normal(sample: Sample) -> bool:
    """A validation sample whose regional features a normal-only model should reconstruct."""
    return sample.label == 0 or (sample.label is None and sample.mask is not None and not is_anomalous(sample))


def batches_of(tensor: torch.Tensor, size: int):
    for start in range(0, len(tensor), size):
        yield tensor[start : start + size]


def pca_latent_dim(features: torch.Tensor, variance: float) -> int:
    """Smallest number of principal components of (M, C) samples explaining ``variance`` (Appendix B)."""
    centered = features.double() - features.double().mean(dim=0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(centered.T @ centered).flip(0).clamp_min(0)
    explained = eigenvalues.cumsum(0) / eigenvalues.sum().clamp_min(1e-12)
    return int(torch.searchsorted(explained, torch.tensor(variance, dtype=explained.dtype)).item()) + 1


@register
class DFRPipeline(Pipeline):
    name = "dfr"
    supervision = SUPERVISION
    config_class = DFRConfig
    description = DESCRIPTION

    def __init__(self, config=None):
        super().__init__(config)
        cfg: DFRConfig = self.config
        self.device = resolve_device(cfg.device)
        self.model = DFRModel(
            cfg.backbone, cfg.feature_layers(), cfg.weights_path, cfg.reflection_padding, cfg.region_size
        ).to(self.device)

    def _features(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        x = images_to_tensor(images, self.config.image_size).to(self.device)
        with autocast(self.device):
            return self.model.generator(x).float()

    # --- learning ------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Train the autoencoder on regional features of the normal ``train`` images (section IV-A 4)
        with the shared training loop; the validation measure is the reconstruction loss of the
        regional features of normal validation images (the job's, or held back from ``train``)."""
        cfg: DFRConfig = self.config
        if not train:
            raise ValueError("dfr needs at least one normal training image")
        check_images([s.image for s in train])
        generator = seed_everything(cfg.seed)
        train, val, source = hold_out_validation(
            train, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=_is_normal
        )
        images = [s.image for s in train]

        # The backbone and the regional feature generator are frozen (section IV-A 4), so the
        # regional features of the training images are computed once and reused every step.
        features = self._all_features(images, progress, "features")  # (N, c_o, h, w)
        # Held back from the normal training images: all normal. The job's own: those known normal.
        normal_val = [s.image for s in val if source == "held back" or _is_normal(s)]
        val_features = self._all_features(normal_val, progress, "validation features") if normal_val else None

        latent_dim = cfg.latent_dim or self._pca_latent_dim(features, generator)
        autoencoder = self.model.build_autoencoder(latent_dim).to(self.device)
        self.meta.update(
            {"train_images": len(images), "validation_images": len(val), "feature_channels": int(features.shape[1]), "latent_dim": latent_dim}
        )
        trainer = Trainer(
            cfg, autoencoder, device=self.device, steps_per_epoch=math.ceil(len(features) / cfg.batch_size),
            progress=progress, measure="val_loss", higher_is_better=False, validation_source=source,
        )
        batches = epoch_batches(len(features), cfg.batch_size, generator, drop_lonely=False)
        # One row per region (N, h*w, c_o), so a step copies only the regions it draws.
        rows = features.permute(0, 2, 3, 1).reshape(features.shape[0], -1, features.shape[1])

        def train_step(step: int) -> torch.Tensor:
            batch = self._training_regions(rows, next(batches), generator)
            # Eq. 4: the L2 distance between each regional feature and its reconstruction,
            # averaged over regions and images.
            return reconstruction_error(batch, autoencoder(batch)).float().mean()

        def validate() -> float:
            total, count = 0.0, 0
            for chunk in batches_of(val_features, cfg.batch_size):
                total += float(reconstruction_error(chunk, autoencoder(chunk)).float().sum())
                count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
            return total / count

        report = trainer.fit(train_step, validate if val_features is not None else None)
        autoencoder.eval()
        self.meta["training"] = report.to_dict()
        self.meta["final_loss"] = report.curves["train_loss"][-1][1] if report.curves["train_loss"] else float("nan")
        self._calibrate(features, val, progress)

    def _all_features(self, images: Sequence[np.ndarray], progress: ProgressFn, stage: str) -> torch.Tensor:
        """Regional features (N, c_o, h, w) of ``images``, batch by batch."""
        chunks = []
        with torch.no_grad():
            for i, batch in enumerate(batches(images, self.config.batch_size)):
                chunks.append(self._features(batch).contiguous())
                progress(stage, min(1.0, (i + 1) * self.config.batch_size / len(images)), None)
        return torch.cat(chunks)

    def _training_regions(self, rows: torch.Tensor, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Region rows (N, h*w, c_o) and a batch of image indices (B,) -> (B * r, c_o, 1, 1):
        ``regions_per_image`` (r) random regions of each of those images.

        The 1x1 autoencoder treats regions independently, so this only thins
        out the per-step sample; every region is still seen over the epochs.
        """
        per_image = self.config.regions_per_image
        b, (_, count, c) = len(images), rows.shape
        if per_image is None or per_image >= count:
            return rows[images].reshape(b * count, c, 1, 1)
        picks = torch.rand(b, count, generator=generator).argsort(dim=1)[:, :per_image].to(rows.device)
        return rows[images.to(rows.device)[:, None], picks].reshape(b * per_image, c, 1, 1)

    def _pca_latent_dim(self, features: torch.Tensor, generator: torch.Generator) -> int:
        cfg: DFRConfig = self.config
        flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        if len(flat) > cfg.pca_samples:
            flat = flat[torch.randperm(len(flat), generator=generator)[: cfg.pca_samples]]
        return pca_latent_dim(flat.cpu(), cfg.pca_variance)

    def _calibrate(self, train_features: torch.Tensor, val: Sequence[Sample] | None, progress: ProgressFn) -> None:
        """Threshold per ``threshold_policy``: from ``val`` when it has usable images, else from the
        training images, as the paper estimates it from an accepted FPR on normal data (section III-D)."""
        evidence = validation_evidence(self, val)
        if evidence is not None:
            maps, masks = evidence
        else:
            maps = []
            with torch.inference_mode():
                for batch in batches(train_features, self.config.batch_size):
                    maps.extend(m.cpu().numpy() for m in self._working_maps(self.model.anomaly_map(batch)))
            masks = [None] * len(maps)
        calibrate(self, maps, masks)
        progress("calibrate", 1.0, {"threshold": float(self.threshold)} if self.threshold is not None else None)

    # --- inference -----------------------------------------------------------------
    def _working_maps(self, regional: torch.Tensor) -> torch.Tensor:
        """Regional map (N, h, w) -> (N, S, S): bilinear upsampling (section III-D), then the
        optional Gaussian smoothing (``blur_sigma``, not in the paper)."""
        return gaussian_blur(upsample(regional, self.config.image_size), self.config.blur_sigma)

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        """Anomaly maps (eq. 5, upsampled and smoothed, at each input's size); image score = the map's maximum."""
        check_images(images)
        if self.model.autoencoder is None:
            raise RuntimeError("dfr is not fitted: call fit() or load a saved model first")
        self.model.eval()
        parts = []
        for batch in batches(images, self.config.batch_size):
            regional = self.model.anomaly_map(self._features(batch))
            parts.append(maps_to_input_sizes(self._working_maps(regional), batch))
        maps = join_maps(parts)  # (N, H, W) when the images share a size: no per-image work
        # The paper defines no image score; the map's maximum makes one threshold serve
        # both the verdict and the mask (an image is anomalous exactly when its mask is non-empty).
        scores = maps.reshape(len(maps), -1).max(1) if isinstance(maps, np.ndarray) else [float(m.max()) for m in maps]
        return self._predictions(scores, maps)

    # --- persistence ---------------------------------------------------------------
    def state_tensors(self) -> dict:
        if self.model.autoencoder is None:
            raise RuntimeError("dfr is not fitted: nothing to save")
        return {
            "latent_dim": int(self.model.autoencoder.latent_dim),
            "autoencoder": {k: v.detach().cpu() for k, v in self.model.autoencoder.state_dict().items()},
        }

    def load_state_tensors(self, state: dict) -> None:
        autoencoder = self.model.build_autoencoder(int(state["latent_dim"]))
        autoencoder.load_state_dict(state["autoencoder"])
        autoencoder.to(self.device).eval()

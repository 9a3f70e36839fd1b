"""``multilevel`` pipeline (thesis 4.1.2 / 5.3): balanced multi-scale patch training on the
shared loop, dense per-pixel inference, threshold calibration, save/load.

Pre-processing: each image is resized to ``image_size`` (area filter), kept in
[0, 1] (the decoder's sigmoid reconstructs [0, 1] patches) and reflection-padded
by 24 pixels, so that every pixel, not only those 16 px from the margin as in
the thesis, is the centre of a 33x33 patch (with 8 px of context for the
convolutions). Post-processing: the per-pixel logits (every ``dense_stride``-th
pixel, bilinearly interpolated in between when > 1) go through a sigmoid and
are resized bilinearly to the input resolution. The image score is the mean of
the highest ``score_top_fraction`` of pixel probabilities.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate, validation_evidence
from ml.components.features import batches, images_to_tensor
from ml.components.runtime import resolve_device, seed_everything
from ml.components.training import Trainer, pixel_f1_max, to_device
from ml.data.io import binarize_mask, resize_mask
from ml.data.splits import hold_out_validation
from ml.pipelines.multilevel.config import DESCRIPTION, SUPERVISION, MultiLevelConfig
from ml.pipelines.multilevel.loss import multilevel_loss
from ml.pipelines.multilevel.sampler import BalancedPatchSampler, balanced_rows
from ml.pipelines.multilevel.torch_model import CONTEXT, PATCH, MultiLevelPatchModel, pad_for_patches
from ml.registry import register


def _has_truth(sample: Sample) -> bool:
    return sample.mask is not None or sample.label == 0


def _truth(sample: Sample) -> np.ndarray:
    """(H, W) bool anomalous pixels; all False for a normal image without a mask."""
    if sample.mask is None:
        return np.zeros(sample.image.shape[:2], dtype=bool)
    return binarize_mask(sample.mask) > 0


def patches_at(tiles: torch.Tensor, rows: torch.Tensor, tile: int) -> torch.Tensor:
    """The 33x33 patches (K, 3, 33, 33) around patch centres ``rows`` (indices into the B*t*t
    centres of (B, 3, t + 48, t + 48) tiles): the decoder's reconstruction targets."""
    out = []
    for row in rows.tolist():
        b, rest = divmod(row, tile * tile)
        y, x = divmod(rest, tile)
        # Centre (y, x) sits at (y + 24, x + 24); its patch spans 16 px each side.
        out.append(tiles[b, :, y + CONTEXT : y + CONTEXT + PATCH, x + CONTEXT : x + CONTEXT + PATCH])
    return torch.stack(out)


@register
class MultiLevelPipeline(Pipeline):
    name = "multilevel"
    supervision = SUPERVISION
    config_class = MultiLevelConfig
    description = DESCRIPTION

    config: MultiLevelConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.device = resolve_device(self.config.device)
        self.model = self._build_model()

    def _build_model(self) -> MultiLevelPatchModel:
        cfg = self.config
        return MultiLevelPatchModel(cfg.channels(), cfg.latent_dim, cfg.aggregation_channels, cfg.hidden, cfg.pool_grid).to(self.device)

    # --- learning ----------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Learn from balanced anomalous / normal patches of the annotated ``train`` images (and
        normal ones) with the shared training loop; the validation measure is pixel F1-max on the
        job's validation images, or on images held back from ``train``."""
        cfg = self.config
        generator = seed_everything(cfg.seed)
        self.model = self._build_model()
        train, val, source = hold_out_validation(
            train, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=_has_truth
        )
        labelled = [s for s in train if _has_truth(s)]
        if not labelled:
            raise ValueError(
                "multilevel learns from images with anomaly masks (and normal images); none of the "
                f"{len(train)} training samples has a mask or a normal label"
            )
        check_images([s.image for s in labelled])
        for s in labelled:
            if s.mask is not None and s.mask.shape[:2] != s.image.shape[:2]:
                raise ValueError(f"sample {s.name!r}: mask {s.mask.shape[:2]} does not match image {s.image.shape[:2]}")
        sampler = BalancedPatchSampler([s.image for s in labelled], [_truth(s) for s in labelled], cfg.image_size, cfg.scales)
        if not sampler.has_positives:
            raise ValueError("multilevel learns what anomalies look like: no training image has an anomalous pixel in its mask")
        progress("prepare", 1.0, {"train_images": float(len(labelled)), "validation_images": float(len(val))})

        patches_per_epoch = sum(m.numel() for m in sampler.masks)
        trainer = Trainer(
            cfg, self.model, device=self.device, steps_per_epoch=math.ceil(patches_per_epoch / (cfg.batch_size * cfg.tile_size**2)),
            progress=progress, measure="val_pixel_f1_max", higher_is_better=True, validation_source=source,
        )

        def train_step(step: int) -> dict[str, float]:
            tiles, truth = sampler.sample(cfg.batch_size, cfg.tile_size, generator)
            rows, labels = balanced_rows(truth, cfg.patches_per_step, generator)
            decode = min(cfg.decoded_patches, len(rows))
            tiles = to_device(tiles, self.device)
            logits, reconstruction, mu, logvar = self.model.tile_forward(tiles, to_device(rows, self.device), decode)
            targets = patches_at(tiles, rows[:decode], truth.shape[-1])
            loss, terms = multilevel_loss(logits, to_device(labels, self.device), reconstruction, targets, mu, logvar, cfg.alpha)
            return {"loss": trainer.backward_step(loss), **terms}

        validate = None
        usable = [s for s in val if _has_truth(s)]
        if usable:
            size = cfg.image_size
            val_images = images_to_tensor([s.image for s in usable], size)
            val_truth = torch.from_numpy(np.stack([resize_mask(_truth(s).astype(np.uint8), size) > 0 for s in usable]))

            def validate() -> float:
                probs = torch.cat([torch.sigmoid(self._logits(chunk, cfg.validation_stride)).cpu() for chunk in batches(val_images, 4)])
                return pixel_f1_max(probs, val_truth)

        report = trainer.fit(train_step, validate)
        self.model.eval()
        self.meta.update({"train_images": len(labelled), "validation_images": len(val), "training": report.to_dict(), "fit_seconds": report.seconds})
        evidence = validation_evidence(self, val)
        if evidence is None:  # no pixel truth to calibrate on: the sigmoid's natural decision point
            self.threshold, self.normalization = 0.5, {}
            self.meta["threshold_source"] = "default 0.5 (no validation images)"
        else:
            calibrate(self, *evidence)
        progress("calibrate", 1.0, {"threshold": float(self.threshold)} if self.threshold is not None else None)

    # --- inference ---------------------------------------------------------------------
    def _logits(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] -> (N, S, S) logits of the patch around every pixel.

        ``stride > 1`` classifies every ``stride``-th pixel (the dense pass still
        runs once; only the per-pixel heads are thinned) and interpolates.
        """
        x = to_device(x, self.device).float()
        padded = pad_for_patches(x)
        if stride == 1:
            return self.model.dense_logits(padded).float()
        logits = self.model.dense_logits(padded, stride=stride).float()
        return F.interpolate(logits[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        self.model.eval()
        cfg = self.config
        size = cfg.image_size
        k = max(1, int(round(cfg.score_top_fraction * size * size)))
        scores: list[float] = []
        maps: list[np.ndarray] = []
        for chunk in batches(list(images), 4):
            probs = torch.sigmoid(self._logits(images_to_tensor(chunk, size), cfg.dense_stride))
            scores.extend(probs.flatten(1).topk(k, dim=1).values.mean(dim=1).cpu().tolist())
            for p, image in zip(probs, chunk):
                h, w = image.shape[:2]
                full = F.interpolate(p[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
                maps.append(full.cpu().numpy().astype(np.float32))
        return self._predictions(scores, maps)

    # --- persistence ---------------------------------------------------------------------
    def state_tensors(self) -> dict:
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def load_state_tensors(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()

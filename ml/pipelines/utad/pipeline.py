"""Unsupervised two-stage pipeline (thesis 4.2.1 / 5.4): stage 1 trains the impression
extractor, stage 2 the style-transfer network on (image, impression) pairs, both in the
shared loop; the anomaly map is eq. 4.21 (or 4.19) on EfficientNet-Lite0 features,
smoothed; the image score is its maximum.

A saved ``vae`` model (``vae_model``) is fused with the impression by eq. 4.11 and
stored inside this model; it must offer ``reconstruct(images)`` on (N, 3, S, S) tensors
in [0, 1]. Without it the impression extractor's output is the impression.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ml.components.backbones import FeatureExtractor
from ml.components.features import gaussian_blur
from ml.components.reconstruction import ReconstructionPipeline
from ml.components.training import Trainer, epoch_batches, to_device
from ml.pipelines.utad.anomaly_map import error_map
from ml.pipelines.utad.config import DESCRIPTION, UTADConfig
from ml.pipelines.utad.loss import impression_loss, style_transfer_loss
from ml.pipelines.utad.torch_model import StyleTransfer, UTADModel
from ml.registry import register


def _vae_from(pipeline):
    if getattr(pipeline, "name", None) != "vae" or not callable(getattr(pipeline, "reconstruct", None)):
        raise ValueError("vae_model must be a saved `vae` model that offers reconstruct(images)")
    return pipeline


@register
class UTADPipeline(ReconstructionPipeline):
    name = "utad"
    config_class = UTADConfig
    cpu_chunk = 2  # images per inference pass on CPU
    # About 1.6x faster on an AVX512-BF16 CPU; bench/utad_combine.py measures the maps both ways.
    infers_in_bfloat16 = True
    description = DESCRIPTION

    def __init__(self, config=None):
        super().__init__(config)
        self.features = FeatureExtractor("efficientnet_lite0", self.config.feature_layers).to(self.device)
        self.vae = None

    def build_model(self) -> UTADModel:
        # Channels-last: oneDNN's convolutions, and the norms written for it, are faster so on CPU.
        return UTADModel(self.config.image_size, self.config.base_channels).to(memory_format=torch.channels_last)

    # --- stage 1: the impression extractor -------------------------------------------------
    def before_training(self, images, val_images, progress) -> None:
        cfg: UTADConfig = self.config
        if cfg.vae_model:
            from ml import registry

            self.vae = _vae_from(registry.load(cfg.vae_model))
        network = self.model.impression
        stage_cfg = dataclasses.replace(cfg, max_steps=cfg.impression_steps)
        generator = torch.Generator().manual_seed(cfg.seed + 2)

        def stage_progress(stage, fraction, metrics=None):
            progress(f"{stage} impression", fraction, metrics)

        trainer = Trainer(
            stage_cfg, network, device=self.device, steps_per_epoch=math.ceil(len(images) / cfg.batch_size),
            progress=stage_progress, measure="val_loss", higher_is_better=False,
        )
        order = epoch_batches(len(images), cfg.batch_size, generator)

        def train_step(step: int):
            x = to_device(images[next(order)], self.device)
            return impression_loss(network, x, cfg.lambda_reconstruction, cfg.alpha_kl, generator)

        def validate() -> float:
            fixed = torch.Generator().manual_seed(cfg.seed + 3)
            total = 0.0
            for start in range(0, len(val_images), cfg.batch_size):
                x = to_device(val_images[start : start + cfg.batch_size], self.device)
                if len(x) < 2:  # the discriminator's batch norm needs two images
                    x = torch.cat([x, x])
                total += float(impression_loss(network, x, cfg.lambda_reconstruction, cfg.alpha_kl, fixed)) * len(x)
            return total / len(val_images)

        report = trainer.fit(train_step, validate if val_images is not None and len(val_images) else None)
        network.eval()
        self.meta["impression_training"] = report.to_dict()

    def impression(self, x: torch.Tensor) -> torch.Tensor:
        """m: the impression of (N, 3, S, S) images, fused with the vae by eq. 4.11 when there is one."""
        self.model.impression.eval()
        with torch.no_grad():
            m = self.model.impression(x)
            if self.vae is not None:
                w = self.config.w_vae
                m = w * self.vae.reconstruct(x).to(m) + (1 - w) * m
        return m

    # --- stage 2: the style transfer ----------------------------------------------------------
    def optimizers(self):
        cfg: UTADConfig = self.config
        return {"model": torch.optim.Adam(self.model.style_transfer.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)}

    def loss(self, x, aux, generator) -> torch.Tensor:
        m = self.impression(x)
        random_style = torch.randn(x.shape[0], StyleTransfer.style_dim, generator=generator).to(x)
        features = self.features if self.config.perceptual_loss else None
        return style_transfer_loss(self.model.style_transfer, x, m, random_style, features)

    # --- inference ------------------------------------------------------------------------------
    def anomaly_maps(self, x, aux):
        if x.device.type == "cpu" and x.shape[0] > self.cpu_chunk:
            # Two images at a time keep the full-size maps of both networks in cache
            # (the style transfer of 8 images at 256 px: 0.52 s in pairs, 0.72 s at once).
            parts = [self.anomaly_maps(part, None) for part in x.split(self.cpu_chunk)]
            return torch.cat([maps for maps, _ in parts]), torch.cat([scores for _, scores in parts])
        cfg: UTADConfig = self.config
        x = x.contiguous(memory_format=torch.channels_last)
        m = self.impression(x)
        # At test time the impression is decoded with the mean style (the random style's expectation).
        x_hat, m_hat, _ = self.model.style_transfer(x, m, torch.zeros(x.shape[0], StyleTransfer.style_dim, device=x.device))
        levels = self.features(torch.cat([x, x_hat, m, m_hat]))
        # The distances, their product and the smoothing in float32 even under bfloat16 inference:
        # the map's fine ordering is what the thresholds and AUROCs read.
        with torch.autocast(device_type=x.device.type, enabled=False):
            maps = gaussian_blur(error_map(levels, x.shape[0], cfg.image_size, cfg.combine), cfg.map_sigma)
        return maps, maps.flatten(1).amax(dim=1)

    # --- persistence ------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"vae": self.vae.to_artifact()} if self.vae is not None else {}

    def load_extra_state(self, state: dict) -> None:
        if state.get("vae") is not None:
            from ml import registry

            artifact = state["vae"]
            self.vae = _vae_from(registry.get(artifact.get("pipeline", "?")).from_artifact(artifact))

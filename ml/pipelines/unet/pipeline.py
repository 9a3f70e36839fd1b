"""Supervised U-Net pipeline (thesis 4.1.1 / 5.2): training loop, pre- and
post-processing, threshold calibration, save/load.

Pre-processing: each image is resized to ``image_size`` x ``image_size``
(bilinear; masks nearest-neighbour) and normalised with the ImageNet mean and
standard deviation. Post-processing: the logit map is resized bilinearly back
to the input resolution and passed through a sigmoid, so the anomaly map is the
probability that a pixel is anomalous. The image score is the mean of the
highest ``score_top_fraction`` of pixel probabilities at working resolution
(a robust maximum: one hot pixel does not flag an image, a small defect does).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate_region, validation_evidence
from ml.components.runtime import autocast, resolve_device, seed_everything
from ml.components.training import Trainer, epoch_batches, pixel_f1_max, to_device
from ml.data.splits import hold_out_validation
from ml.data.io import binarize_mask, resize_image, resize_mask
from ml.data.transforms import normalize, normalize_imagenet
from ml.pipelines.unet.config import DESCRIPTION, SUPERVISION, UNetConfig
from ml.pipelines.unet.loss import SegmentationLoss, consistency_loss
from ml.pipelines.unet.torch_model import UNetSegmenter
from ml.registry import register

def _has_truth(sample: Sample) -> bool:
    """Pixel truth exists: a mask, or a normal label (an empty mask)."""
    return sample.mask is not None or sample.label == 0


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool, binarised the one library way (``> 0.5`` after scaling to [0, 1])."""
    return binarize_mask(mask) > 0


def augment_batch(images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator, flips: bool, color: bool):
    """Random flips (image and mask together) and colour changes (image only).

    ``images``: (N, 3, H, W) float in [0, 1]; ``masks``: (N, 1, H, W).
    Returns new tensors; the same flip is applied to an image and its mask, so
    they stay aligned.
    """
    n = images.shape[0]
    if flips:
        draw = torch.rand(n, 2, generator=generator)
        h = (draw[:, 0] < 0.5).view(n, 1, 1, 1).to(images.device)
        v = (draw[:, 1] < 0.5).view(n, 1, 1, 1).to(images.device)
        images = torch.where(h, images.flip(-1), images)
        masks = torch.where(h, masks.flip(-1), masks)
        images = torch.where(v, images.flip(-2), images)
        masks = torch.where(v, masks.flip(-2), masks)
    if color:
        images = _jitter_colour(images, torch.rand(n, 4, generator=generator).to(images.device))
    return images, masks


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _jitter_colour(images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Brightness x[0.8, 1.2], contrast x[0.8, 1.2], saturation x[0.7, 1.3] and a
    hue rotation of +-18 degrees, one draw per image (``draws``: (N, 4) in [0, 1)).

    Mild ranges: a defect must stay visible. Hue is rotated in YIQ space (a
    linear stand-in for HSV that runs on the whole batch at once).
    """
    n = images.shape[0]
    brightness, contrast, saturation, hue = (draws[:, i].view(n, 1, 1, 1) for i in range(4))
    x = images * (0.8 + 0.4 * brightness)
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * (0.8 + 0.4 * contrast) + mean
    grey = (grey - mean) * (0.8 + 0.4 * contrast) + mean
    x = (x - grey) * (0.7 + 0.6 * saturation) + grey
    angle = (hue.view(n) - 0.5) * (2 * math.pi / 10)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(n, 3, 3, device=images.device, dtype=images.dtype)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    to_yiq, to_rgb = _RGB_TO_YIQ.to(images), _YIQ_TO_RGB.to(images)
    transform = to_rgb @ rotation @ to_yiq  # (N, 3, 3)
    x = torch.einsum("nij,njhw->nihw", transform, x)
    return x.clamp_(0.0, 1.0)


def _flip(x: torch.Tensor, kind: int) -> torch.Tensor:
    """Geometric transform T of eq. 5.11 (its own inverse): 0 horizontal, 1 vertical, 2 both."""
    if kind == 0:
        return x.flip(-1)
    if kind == 1:
        return x.flip(-2)
    return x.flip(-1).flip(-2)


@register
class UNetPipeline(Pipeline):
    name = "unet"
    supervision = SUPERVISION
    config_class = UNetConfig
    description = DESCRIPTION

    config: UNetConfig

    def __init__(self, config: dict[str, Any] | UNetConfig | None = None):
        super().__init__(config)
        self.device = resolve_device(self.config.device)
        self.model = self._build_model(pretrained=False)
        # The ``vae`` pipeline whose reconstruction residual is the extra input (thesis 4.1.1).
        self.residual_model: Pipeline | None = None

    def use_residual_model(self, vae: Pipeline, source: str) -> None:
        """Take ``vae`` (a fitted ``vae`` pipeline) as the residual model of ``input = "image+residual"``;
        ``source`` says where it came from (a file, a model version) for the model's record."""
        if getattr(vae, "name", None) != "vae":
            raise ValueError(f"the residual input needs a 'vae' model, got a {getattr(vae, 'name', type(vae).__name__)!r} model")
        vae.device = self.device
        vae.model.to(self.device).eval()
        self.residual_model = vae
        self.meta["residual_model"] = {"source": source, "image_size": vae.config.image_size, "reconstruction": vae.meta.get("reconstruction")}

    def _ensure_residual_model(self) -> None:
        """Load ``vae_model`` (command line) unless a residual model was handed in; refuse plainly without one."""
        if self.config.input != "image+residual" or self.residual_model is not None:
            return
        if self.config.vae_model is None:
            raise ValueError(
                "input 'image+residual' needs a vae model for the residual: set vae_model to a saved vae model file "
                "(command line) or choose a vae model version (platform)"
            )
        from ml import registry

        self.use_residual_model(registry.load(self.config.vae_model), f"file {self.config.vae_model}")

    def _build_model(self, pretrained: bool) -> UNetSegmenter:
        """The network; ``pretrained`` loads the encoder's ImageNet weights (for training; a saved
        model brings its own weights, so loading one skips that file)."""
        cfg = self.config
        return UNetSegmenter(
            in_channels=self._in_channels(), base_channels=cfg.base_channels, encoder=cfg.encoder, pretrained=pretrained
        ).to(self.device)

    def _in_channels(self) -> int:
        return 6 if self.config.input == "image+residual" else 3

    # --- pre-processing ----------------------------------------------------------
    def _network_input(self, images01: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] -> normalised network input (N, C_in, S, S).

        With ``input = "image+residual"`` (thesis 4.1.1, figure 4.1) the
        residual ``image - reconstruction`` of the ``vae`` model (three signed
        channels in [-1, 1], computed at the vae's working size and resized
        bilinearly) is concatenated channel-wise after the normalised image.
        """
        if self.config.encoder == "efficientnet_lite0":
            x = normalize(images01, "efficientnet_lite")
        else:
            x = normalize_imagenet(images01)
        if self.config.input == "image+residual":
            x = torch.cat([x, self.residual(images01).to(x.dtype)], dim=1)
        return x

    @torch.no_grad()
    def residual(self, images01: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] -> (N, 3, S, S) residual ``image - vae reconstruction``."""
        vae = self.residual_model
        if vae is None:
            raise RuntimeError("input 'image+residual' has no vae model attached")
        size = vae.config.image_size
        x = images01.float()
        small = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True) if x.shape[-1] != size else x
        reconstruction = vae.reconstruct_tensor(small)
        if reconstruction.shape[-2:] != x.shape[-2:]:
            reconstruction = F.interpolate(reconstruction, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x - reconstruction

    def _stack_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (N, 3, S, S) tensor of the images resized to the working size."""
        size = self.config.image_size
        arr = np.stack([resize_image(im, size) for im in images])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def _training_set(self, train: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Images with masks, plus normal images (label 0) as empty masks.

        Images with neither a mask nor label 0 are unlabeled (not known to be
        normal) and are left out; their count is returned.
        """
        size = self.config.image_size
        images, masks, skipped = [], [], 0
        for sample in train:
            if sample.mask is not None:
                mask = binary_mask(sample.mask)
                if mask.shape != sample.image.shape[:2]:
                    raise ValueError(
                        f"sample {sample.name or len(images)}: mask {mask.shape} does not match image {sample.image.shape[:2]}"
                    )
            elif sample.label == 0:
                mask = np.zeros(sample.image.shape[:2], dtype=bool)
            else:
                skipped += 1
                continue
            images.append(sample.image)
            masks.append(resize_mask(mask.astype(np.uint8), size) > 0)
        if not images:
            raise ValueError(
                "the U-Net learns from images with anomaly masks (and normal images); none of the "
                f"{len(train)} training samples has a mask or a normal label"
            )
        check_images(images)
        return self._stack_images(images), torch.from_numpy(np.stack(masks)).unsqueeze(1), skipped

    # --- training ------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Learn masks with the shared training loop: validation images are the job's, or
        held back from ``train`` (stratified); the measure is pixel F1-max on them."""
        cfg = self.config
        generator = seed_everything(cfg.seed)
        self._ensure_residual_model()
        self.model = self._build_model(pretrained=cfg.encoder != "plain")
        train, val, source = hold_out_validation(
            train, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=_has_truth
        )
        images_u8, masks, skipped = self._training_set(train)
        n = images_u8.shape[0]
        progress("prepare", 1.0, {"train_images": float(n), "skipped_unlabeled": float(skipped), "validation_images": float(len(val))})

        bce_weight, dice_weight, iou_weight, consistency_weight = cfg.loss_weights()
        criterion = SegmentationLoss(bce_weight, dice_weight, iou_weight)
        if cfg.freeze_encoder and cfg.encoder != "plain":
            for p in self.model.unet.encoder_parameters():
                p.requires_grad_(False)
        trainer = Trainer(
            cfg,
            self.model,
            device=self.device,
            steps_per_epoch=math.ceil(n / cfg.batch_size),
            progress=progress,
            measure="val_pixel_f1_max",
            higher_is_better=True,
            param_groups=self._param_groups(),
            validation_source=source,
        )
        batches = epoch_batches(n, cfg.batch_size, generator)

        def train_step(step: int) -> dict[str, float]:
            idx = next(batches)
            x = to_device(images_u8[idx], self.device).float().div_(255.0)
            y = to_device(masks[idx], self.device).float()
            x, y = augment_batch(x, y, generator, cfg.augment_flips, cfg.augment_color)
            x = self._network_input(x)
            logits = self.model(x)
            loss, terms = criterion(logits.float(), y)
            if consistency_weight > 0:
                kind = int(torch.randint(0, 3, (1,), generator=generator))
                restored = _flip(self.model(_flip(x, kind)), kind)
                consistency = consistency_loss(logits.float(), restored.float())
                loss = loss + consistency_weight * consistency
                terms["consistency"] = float(consistency.detach())
            return {"loss": trainer.backward_step(loss), **terms}

        validate = None
        val_set = self._validation_set(val)
        if val_set is not None:
            val_images, val_masks = val_set

            def validate() -> float:
                probs = torch.cat([self._probabilities(val_images[i : i + cfg.batch_size]) for i in range(0, len(val_images), cfg.batch_size)])
                return pixel_f1_max(probs, val_masks)

        report = trainer.fit(train_step, validate)
        self.model.eval()
        self.meta.update(
            {
                "train_images": n,
                "validation_images": len(val),
                "skipped_unlabeled": skipped,
                "training": report.to_dict(),
                "fit_seconds": report.seconds,
            }
        )
        self._calibrate(val, progress)

    def _param_groups(self) -> list[dict] | None:
        """Decoder at the full learning rate, the pretrained encoder at ``encoder_lr_scale`` of it (or frozen)."""
        cfg = self.config
        if cfg.encoder == "plain":
            return None
        groups = [{"params": list(self.model.unet.decoder_parameters()), "lr_scale": 1.0}]
        if not cfg.freeze_encoder and cfg.encoder_lr_scale > 0:
            groups.append({"params": list(self.model.unet.encoder_parameters()), "lr_scale": cfg.encoder_lr_scale})
        return groups

    def _validation_set(self, val: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """uint8 images and binary masks (working size) of the validation samples with pixel truth."""
        usable = [s for s in val if _has_truth(s)]
        if not usable:
            return None
        size = self.config.image_size
        images = self._stack_images([s.image for s in usable])
        masks = [
            resize_mask(binary_mask(s.mask).astype(np.uint8), size) > 0 if s.mask is not None else np.zeros((size, size), bool)
            for s in usable
        ]
        return images, torch.from_numpy(np.stack(masks)).unsqueeze(1)

    def _probabilities(self, images_u8: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) uint8 -> (N, 1, S, S) pixel probabilities at working size."""
        x = to_device(images_u8, self.device).float().div_(255.0)
        return torch.sigmoid(self.model(self._network_input(x)).float()).cpu()

    # --- threshold -------------------------------------------------------------------
    def _calibrate(self, val: Sequence[Sample] | None, progress: ProgressFn) -> None:
        """Set ``self.threshold`` (on pixel probabilities) per the configured policy, via ml.thresholds.

        ``f1``: F1-optimal over the pixels of annotated validation images;
        ``fpr`` / ``minmax``: from the map maxima of normal validation images;
        ``manual``: the configured value (probabilities are already on a
        [0, 1] scale, so the normalised and raw scales coincide). Without
        usable validation data the threshold is 0.5, the natural decision point
        of a sigmoid. The normalisation maps 0 -> 0, the threshold -> 0.5 and
        1 -> 1, so a normalised value above 0.5 means "anomalous" as for every
        pipeline.
        """
        from ml import thresholds

        cfg = self.config
        threshold, source = None, "no validation images"
        maps, truths = [], []
        if cfg.threshold_policy == "manual":
            threshold, source = float(cfg.manual_threshold), "manual"
        elif (evidence := validation_evidence(self, val)) is not None:
            maps = [np.asarray(m) for m in evidence[0]]
            truths = [binary_mask(mask) if mask is not None else np.zeros(m.shape, bool) for m, mask in zip(maps, evidence[1])]
            threshold, source = thresholds.calibrate_pixels(cfg.threshold_policy, maps, truths, fpr=cfg.threshold_fpr)
        if threshold is None:
            threshold, source = 0.5, f"default 0.5 ({source})"
        self.threshold = float(threshold)
        self.normalization = thresholds.normalization_for(self.threshold, np.array([0.0]), np.array([1.0]))
        self.meta["threshold_source"] = source
        calibrate_region(self, maps, truths)
        progress("calibrate", 1.0, {"threshold": self.threshold})

    # --- inference ---------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        self._ensure_residual_model()
        self.model.eval()
        cfg = self.config
        size = cfg.image_size
        scores: list[float] = []
        maps: list[np.ndarray] = []
        k = max(1, int(round(cfg.score_top_fraction * size * size)))
        for start in range(0, len(images), cfg.batch_size):
            chunk = images[start : start + cfg.batch_size]
            x = self._stack_images(chunk).to(self.device).float().div_(255.0)
            with autocast(self.device):
                logits = self.model(self._network_input(x))
            logits = logits.float()
            probs = torch.sigmoid(logits).flatten(1)
            scores.extend(probs.topk(k, dim=1).values.mean(dim=1).cpu().tolist())
            for i, image in enumerate(chunk):
                h, w = image.shape[:2]
                full = F.interpolate(logits[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)
                maps.append(torch.sigmoid(full)[0, 0].cpu().numpy().astype(np.float32))
        return self._predictions(scores, maps)

    # --- persistence ---------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Any]:
        """The U-Net's weights and, for the residual input, the whole vae artifact (so a saved U-Net predicts alone)."""
        state: dict[str, Any] = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}
        if self.config.input == "image+residual":
            self._ensure_residual_model()
            state["residual_model"] = self.residual_model.to_artifact()
        return state

    def load_state_tensors(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()
        if "residual_model" in state:
            from ml.pipelines.vae.pipeline import VAEPipeline

            vae = VAEPipeline.from_artifact(state["residual_model"])
            vae.device = self.device
            vae.model.to(self.device).eval()
            self.residual_model = vae

"""Two-stage rail obstacle pipeline (rail-two-stage-anomaly.txt, Algorithm 1).

1. Rail segmentation (section III-A): a U-Net with a pretrained encoder, trained with the shared
   loop on images that carry a ``rail`` class mask (``Sample.class_masks["rail"]``), with focal
   loss (eq. 2) or weighted BCE (eq. 1); augmentation by horizontal flips, brightness, contrast
   and noise (IV-B). Validation measure: rail IoU; ``meta["segmentation"]`` holds the mIoU of the
   validation images (mean of the rail and background IoU, the measure of Table I).
2. Centre lines, DBSCAN, joining, extension and eq. 3 patches (``centrelines``; III-B, III-C).
3. Patch autoencoder (III-C, Fig. 1) trained with the shared loop on the patches of normal images
   found by stage 1 (as the paper generates its training patches with its segmentation model,
   IV-A); reconstruction error eq. 4. The normal range ``[min, max]`` of the errors comes from
   held-back normal images (the paper's threshold set, III-C).

   Departures from the paper, each a config option chosen on held-back synthetic scenes (the
   ``paper`` preset undoes them): the error on the residual averaged over 4x4 cells
   (``error_pooling``), to the power ``error_exponent`` and multiplied by the distance of the
   patch's frozen pretrained features to the nearest normal training patch's (``patch_score``),
   each divided by the median of the same kind of patch in the same image
   (``scene_normalization``; the distance by its square root, ``distance_normalization``), and each
   then by the median of held-back normal patches of the same kind at the same distance from the
   camera (``depth_bands``) before the score meets the range; only the range's maximum flags a patch (``range_bounds``); and the
   autoencoder's batch-norm units that were constant in training keep that constant at inference
   (``silence_dead_units``).

Output per image: a map that is 0 off the patches and, on each patch, its deviation from the
normal range ``d = err / max`` (``d = max(err / max, min / err)`` with both bounds; ``d <= 1``
inside the range, so with the paper's policy the threshold is 1), the image score ``max d``, and in
``Predictions.extras`` the rail mask and the anomalous patches as boxes with their scores.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torchvision.ops import roi_align

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.coreset import greedy_coreset, nearest_neighbors
from ml.components.runtime import autocast, resolve_device, seed_everything
from ml.components.training import Trainer, epoch_batches, to_device
from ml.data.io import binarize_mask, resize_image, resize_mask
from ml.data.splits import hold_out_validation
from ml.data.transforms import normalize
from ml.pipelines.rail import centrelines
from ml.pipelines.rail.config import DESCRIPTION, REQUIRED_CLASS_MASKS, SUPERVISION, RailConfig
from ml.pipelines.rail.loss import focal_loss, weighted_bce
from ml.pipelines.rail.torch_model import PatchAutoencoder, RailSegmenter, reconstruction_error, silence_dead_units
from ml.registry import register

RAIL = "rail"


def rail_mask_of(sample: Sample) -> np.ndarray | None:
    """The sample's rail mask as (H, W) bool, or None when it has none."""
    masks = sample.class_masks or {}
    if masks.get(RAIL) is None:
        return None
    return binarize_mask(masks[RAIL]) > 0


def patch_stage_seed(seed: int) -> int:
    """The seed stage 3 (the patch autoencoder and the feature bank's coreset) starts from: derived
    from the job's seed, so it does not depend on how many random numbers stage 1 drew."""
    return (seed + 7919) % (2**63)


def _usable(sample: Sample) -> bool:
    return rail_mask_of(sample) is not None or sample.label == 0


def iou_pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(rail IoU, background IoU) of bool masks; an empty union counts as 1."""
    def iou(a, b):
        union = np.logical_or(a, b).sum()
        return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)

    return iou(predicted, truth), iou(~predicted, ~truth)


THRESHOLD_GRID = np.round(np.arange(0.1, 0.91, 0.05), 2)


def best_rail_threshold(probabilities: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """(threshold, rail IoU): the grid threshold on rail probabilities with the highest IoU against
    ``truth`` (bool, same shape) over all pixels; ties go to the threshold nearest 0.5."""
    truth = truth.bool()
    best = (0.5, -1.0)
    for t in sorted(THRESHOLD_GRID.tolist(), key=lambda t: abs(t - 0.5)):
        predicted = probabilities > t
        union = (predicted | truth).sum().item()
        iou = (predicted & truth).sum().item() / union if union else 1.0
        if iou > best[1]:
            best = (float(t), iou)
    return best


@register
class RailPipeline(Pipeline):
    name = "rail"
    supervision = SUPERVISION
    config_class = RailConfig
    description = DESCRIPTION
    required_class_masks = REQUIRED_CLASS_MASKS

    config: RailConfig

    def __init__(self, config: dict[str, Any] | RailConfig | None = None):
        super().__init__(config)
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.segmenter = RailSegmenter(cfg.encoder, cfg.base_channels, pretrained=False).to(self.device)
        self.autoencoder = PatchAutoencoder(cfg.patch_size, cfg.conv_channels, cfg.hidden_units, cfg.latent_size).to(self.device)
        self.error_range: tuple[float, float] | None = None
        self.error_reference: float | None = None  # median normal patch error: the divisor where an image has too few patches
        self.rail_threshold: float | None = None  # calibrated on validation rail masks (fit)
        self.feature_bank: torch.Tensor | None = None  # (M, D) features of normal training patches
        self.feature_reference: float | None = None  # median normal patch feature distance
        self.depth_profile: np.ndarray | None = None  # (2 kinds, bands, error / distance) medians (_fit_depth_profile)
        self._extractor = None  # the frozen feature network, built on first use

    @property
    def stage2(self) -> centrelines.Stage2Settings:
        """Stage 2's settings from the current config (a config replaced after construction, as the
        held-back scoring tool does, takes effect)."""
        cfg = self.config
        return centrelines.Stage2Settings(
            roi_top=cfg.roi_top, dbscan_eps=cfg.dbscan_eps, dbscan_min_samples=cfg.dbscan_min_samples,
            join_max_dx=cfg.join_max_dx, join_max_gap=cfg.join_max_gap, min_rail_points=cfg.min_rail_points,
            patch_max=cfg.patch_max, patch_min=cfg.patch_min, patch_step=cfg.patch_step,
            shrink_every=cfg.shrink_every, max_patches=cfg.max_patches, between_rails=cfg.between_rails,
            patch_overlap=cfg.patch_overlap,
        )

    # --- pre-processing ------------------------------------------------------------------------
    def _stack(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (N, 3, h, w) at the working size."""
        h, w = self.config.working_size()
        return torch.from_numpy(np.stack([resize_image(im, (h, w)) for im in images])).permute(0, 3, 1, 2).contiguous()

    def _network_input(self, x01: torch.Tensor) -> torch.Tensor:
        return normalize(x01, "efficientnet_lite" if self.config.encoder == "efficientnet_lite0" else "imagenet")

    # --- stage 1 -----------------------------------------------------------------------------------
    def _segmentation_set(self, samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor] | None:
        h, w = self.config.working_size()
        pairs = [(s.image, m) for s in samples if (m := rail_mask_of(s)) is not None]
        if not pairs:
            return None
        for i, (image, mask) in enumerate(pairs):
            if mask.shape != image.shape[:2]:
                raise ValueError(f"rail mask {mask.shape} of image {i} does not match its size {image.shape[:2]}")
        images = self._stack([p[0] for p in pairs])
        masks = np.stack([resize_mask(p[1].astype(np.uint8), (h, w)) > 0 for p in pairs])
        return images, torch.from_numpy(masks).unsqueeze(1)

    def _augment(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Section IV-B: horizontal flip, random brightness and contrast, random noise. ``x`` in [0, 1]."""
        n = x.shape[0]
        draw = torch.rand(n, 4, generator=generator).to(x.device)
        flip = (draw[:, 0] < 0.5).view(n, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
        y = torch.where(flip, y.flip(-1), y)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (0.7 + 0.6 * draw[:, 1].view(n, 1, 1, 1)) + mean  # contrast
        x = x * (0.6 + 0.8 * draw[:, 2].view(n, 1, 1, 1))  # brightness
        noise = torch.randn(x.shape, generator=generator).to(x.device) * (0.04 * draw[:, 3].view(n, 1, 1, 1))
        return (x + noise).clamp_(0, 1), y

    def _rail_cut(self) -> float:
        """The rail probability threshold: calibrated on validation masks when it was, else the config's."""
        return self.rail_threshold if self.rail_threshold is not None else self.config.segmentation_threshold

    def _segmentation_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.segmentation_loss == "focal":
            return focal_loss(logits, target, cfg.focal_alpha, cfg.focal_gamma)
        return weighted_bce(logits, target, cfg.bce_w0, cfg.bce_w1)

    def _rail_probabilities(self, images_u8: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) uint8 -> (N, h, w) rail probabilities on the CPU."""
        out = []
        for start in range(0, len(images_u8), self.config.batch_size):
            x = to_device(images_u8[start : start + self.config.batch_size], self.device).float().div_(255.0)
            with autocast(self.device):
                logits = self.segmenter(self._network_input(x))
            out.append(torch.sigmoid(logits.float())[:, 0].cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def _fit_segmentation(self, train, val, source, generator, progress) -> None:
        cfg = self.config
        data = self._segmentation_set(train)
        if data is None:
            raise ValueError(
                f"the rail pipeline learns to find rails from images with a '{RAIL}' mask; none of the "
                f"{len(train)} training images has one (draw rail polygons on some normal images)"
            )
        images, masks = data
        n = len(images)
        val_data = self._segmentation_set(val)
        progress("prepare", 1.0, {"rail_mask_images": float(n), "rail_mask_validation_images": float(len(val_data[0]) if val_data else 0)})
        self.segmenter = RailSegmenter(cfg.encoder, cfg.base_channels, pretrained=cfg.encoder != "plain").to(self.device)
        groups = None
        if cfg.encoder != "plain":
            unet = self.segmenter.unet
            groups = [{"params": list(unet.decoder_parameters()), "lr_scale": 1.0}]
            if cfg.encoder_lr_scale > 0:
                groups.append({"params": list(unet.encoder_parameters()), "lr_scale": cfg.encoder_lr_scale})
        trainer = Trainer(
            cfg, self.segmenter, device=self.device, steps_per_epoch=math.ceil(n / cfg.batch_size),
            progress=_renamed(progress, "train rail segmentation"), measure="val_rail_iou", higher_is_better=True,
            param_groups=groups, validation_source=source if val_data else "none",
        )
        batches = epoch_batches(n, cfg.batch_size, generator)

        def train_step(step: int) -> torch.Tensor:
            idx = next(batches)
            x = to_device(images[idx], self.device).float().div_(255.0)
            y = to_device(masks[idx], self.device).float()
            if cfg.augment:
                x, y = self._augment(x, y, generator)
            return self._segmentation_loss(self.segmenter(self._network_input(x)), y)

        validate = None
        if val_data is not None:
            # Measured at the drawn masks' own resolution, as predict hands the rail mask back.
            val_images = val_data[0]
            val_truths = [m for s in val if (m := rail_mask_of(s)) is not None]
            val_truth = torch.from_numpy(np.concatenate([t.ravel() for t in val_truths]))

            def validate() -> float:
                probabilities = self._full_resolution(self._rail_probabilities(val_images), val_truths)
                if cfg.calibrate_segmentation_threshold:
                    return best_rail_threshold(probabilities, val_truth)[1]
                return iou_pair((probabilities > cfg.segmentation_threshold).numpy(), val_truth.numpy())[0]

        report = trainer.fit(train_step, validate)
        self.meta["segmentation_training"] = report.to_dict()
        self.rail_threshold = None
        if val_data is not None:
            self.segmenter.eval()
            with torch.no_grad():
                probabilities = self._full_resolution(self._rail_probabilities(val_images), val_truths)
            if cfg.calibrate_segmentation_threshold:
                self.rail_threshold, _ = best_rail_threshold(probabilities, val_truth)
            self.meta["segmentation_threshold"] = {
                "value": self._rail_cut(),
                "source": "rail IoU on held-back validation images" if self.rail_threshold is not None else "configured",
            }
            rail, background = iou_pair((probabilities > self._rail_cut()).numpy(), val_truth.numpy())
            self.meta["segmentation"] = {"rail_iou": rail, "background_iou": background, "miou": (rail + background) / 2, "images": float(len(val_truths))}

    @staticmethod
    def _full_resolution(probabilities: torch.Tensor, truths: Sequence[np.ndarray]) -> torch.Tensor:
        """Working-size rail probabilities upsampled (bilinear) to each mask's size, flattened and joined."""
        return torch.from_numpy(np.concatenate([
            cv2.resize(p.numpy(), (t.shape[1], t.shape[0]), interpolation=cv2.INTER_LINEAR).ravel() for p, t in zip(probabilities, truths)
        ]))

    # --- stage 2 -------------------------------------------------------------------------------------
    def _patches(
        self, images_u8: torch.Tensor, given: Sequence[np.ndarray | None] | None = None, originals: Sequence[np.ndarray] | None = None
    ) -> tuple[list[list[centrelines.Patch]], list[np.ndarray], list[np.ndarray | None]]:
        """Per image: the patches along its rails, the (K, 3, P, P) float32 patch pixels in [0, 1]
        (resized to ``patch_size``) and stage 1's rail probabilities at working size (None where
        the mask was given). ``given``: rail masks at working size to use instead of stage 1's
        (None entries are segmented). ``originals``: the images at their own resolution, to crop
        the patches from when ``patch_resolution`` is "image" (the working-size images otherwise)."""
        cfg = self.config
        given = list(given) if given is not None else [None] * len(images_u8)
        todo = [i for i, m in enumerate(given) if m is None]
        probabilities = [None] * len(given)
        for i, prob in zip(todo, self._rail_probabilities(images_u8[todo]) if todo else []):
            probabilities[i] = prob.numpy()
            given[i] = probabilities[i] > self._rail_cut()
        patch_lists, pixels = [], []
        stage2 = self.stage2
        use_originals = originals is not None and cfg.patch_resolution == "image"
        for index, (image, mask) in enumerate(zip(images_u8, given)):
            rails = centrelines.rails_from_mask(mask, stage2)
            patches = centrelines.patches_from_rails(rails, stage2, top=stage2.roi_row(mask.shape[0]))
            hwc = originals[index] if use_originals else image.permute(1, 2, 0).numpy()
            h, w = mask.shape
            sy, sx = hwc.shape[0] / h, hwc.shape[1] / w
            crops = []
            for patch in patches:
                x0, y0, x1, y1 = patch.box(w, h)
                x0, x1 = int(round(x0 * sx)), max(int(round(x0 * sx)) + 1, int(round(x1 * sx)))
                y0, y1 = int(round(y0 * sy)), max(int(round(y0 * sy)) + 1, int(round(y1 * sy)))
                crops.append(cv2.resize(np.ascontiguousarray(hwc[y0:y1, x0:x1]), (cfg.patch_size, cfg.patch_size), interpolation=cv2.INTER_AREA))
            array = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / 255.0 if crops else np.zeros((0, 3, cfg.patch_size, cfg.patch_size), np.float32)
            patch_lists.append(patches)
            pixels.append(array)
        return patch_lists, pixels, probabilities

    def _normal_patches(
        self, samples: Sequence[Sample], use_truth: bool, jitter: bool = False
    ) -> tuple[torch.Tensor, list[list[centrelines.Patch]], torch.Tensor | None, torch.Tensor | None]:
        """Patches of the normal samples along their rails: all images' pixels joined, each image's
        patch list, all patches' features joined, and with ``jitter`` the features of their
        ``bank_jitter`` copies joined (``_jitter_shifts``; features None when ``patch_score`` needs
        none, copies None without ``jitter``). The drawn rail masks where ``use_truth`` and a sample
        has one (the rails are exactly known), stage 1's masks otherwise."""
        h, w = self.config.working_size()
        normal = [s for s in samples if s.label == 0]
        chunks, patch_lists, features, shifted = [], [], [], []
        shifts = self._jitter_shifts() if jitter else ()
        for start in range(0, len(normal), 16):
            part = normal[start : start + 16]
            given = [
                resize_mask(m.astype(np.uint8), (h, w)) > 0 if use_truth and (m := rail_mask_of(s)) is not None else None
                for s in part
            ]
            images = [s.image for s in part]
            found, pixels, _ = self._patches(self._stack(images), given, images)
            patch_lists.extend(found)
            chunks.extend(pixels)
            if self._uses_features():
                per_image = self._patch_features(images, found, ((0.0, 0.0), *shifts))
                features.extend(f[: len(q)] for f, q in zip(per_image, found))
                shifted.extend(f[len(q) :] for f, q in zip(per_image, found))
        size = self.config.patch_size
        pixels = torch.from_numpy(np.concatenate(chunks)) if chunks else torch.zeros(0, 3, size, size)

        def joined(parts: list[torch.Tensor]) -> torch.Tensor | None:
            parts = [f for f in parts if len(f)]  # an image without patches has a (0, 1) placeholder
            return (torch.cat(parts) if parts else torch.zeros(0, 1)) if self._uses_features() else None

        return pixels, patch_lists, joined(features), joined(shifted) if jitter else None

    # --- stage 3 -------------------------------------------------------------------------------------
    def _errors(self, patches: torch.Tensor, pool: int = 1) -> torch.Tensor:
        """Eq. 4 per patch (on ``pool`` x ``pool`` cells of the residual), (K,) on the CPU."""
        out = []
        for start in range(0, len(patches), 1024):
            x = to_device(patches[start : start + 1024], self.device)
            out.append(reconstruction_error(x, self.autoencoder(x), pool).cpu())
        return torch.cat(out) if out else torch.zeros(0)

    SCENE_MIN_PATCHES = 5  # a median over fewer patches would let an obstacle set its own reference

    def _scene_normalized(
        self, errors: np.ndarray, patches: Sequence[centrelines.Patch], reference: float | None = None, power: float = 1.0
    ) -> np.ndarray:
        """One image's patch errors (or feature distances) divided by the median of the same kind of
        patch (on a rail, between the rails) in that image; a kind with too few patches takes the
        median of all the image's patches, an image with too few ``reference``, the normal patches'
        median (default: that of the reconstruction errors); each divisor to ``power``. Unchanged
        when ``scene_normalization`` is off."""
        if not self.config.scene_normalization or len(errors) == 0:
            return errors
        reference = self.error_reference if reference is None else reference
        between = np.array([p.between for p in patches], bool)
        enough = len(errors) >= self.SCENE_MIN_PATCHES
        fallback = float(np.median(errors)) if enough else (reference or 1.0)
        out = np.empty_like(errors, dtype=np.float64)
        for kind in (between, ~between):
            if kind.any():
                reference = float(np.median(errors[kind])) if kind.sum() >= self.SCENE_MIN_PATCHES else fallback
                out[kind] = errors[kind] / max(reference, 1e-9) ** power
        return out

    def _normalized_parts(
        self, errors: np.ndarray, patch_lists: Sequence[Sequence[centrelines.Patch]], distances: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per image, its patches' errors (``_errors`` of all images' patches joined, pooled)
        scene-normalised, and when ``distances`` is given (all patches joined) those divided by the
        scene's median to the power ``distance_normalization`` (else None)."""
        errors = errors.astype(np.float64)
        out, start = [], 0
        for patches in patch_lists:
            end = start + len(patches)
            error = self._scene_normalized(errors[start:end], patches)
            distance = None
            if distances is not None:
                distance = self._scene_normalized(
                    distances[start:end].astype(np.float64), patches, self.feature_reference, self.config.distance_normalization
                )
            out.append((error, distance))
            start = end
        return out

    def _patch_scores(
        self, errors: np.ndarray, patch_lists: Sequence[Sequence[centrelines.Patch]], distances: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Per image, its patches' scores as they meet the normal range: the normalised parts
        (``_normalized_parts``), each divided by the depth profile's median for the patch's kind and
        band when there is one; with distances, the error to the power ``error_exponent`` times the
        distance."""
        out = []
        for patches, (error, distance) in zip(patch_lists, self._normalized_parts(errors, patch_lists, distances)):
            if self.depth_profile is not None and len(patches):
                factors = self.depth_profile[[int(p.between) for p in patches], self._depth_bands(patches)]
                error = error / factors[:, 0]
                distance = None if distance is None else distance / factors[:, 1]
            out.append(error if distance is None else error ** self.config.error_exponent * distance)
        return out

    DEPTH_MIN_PATCHES = 10  # a band's median over fewer held-back patches is noise: it takes the nearest band's

    def _depth_bands(self, patches: Sequence[centrelines.Patch]) -> np.ndarray:
        """Each patch's band of distance from the camera: the region of interest (from its top row to
        the bottom of the working-size image) cut into ``depth_bands`` bands of rows, 0 the farthest,
        by the row of the patch's centre."""
        h, w = self.config.working_size()
        bands = self.depth_profile.shape[1] if self.depth_profile is not None else self.config.depth_bands
        top = self.stage2.roi_row(h)
        centres = np.array([(box[1] + box[3]) / 2 for box in (p.box(w, h) for p in patches)], np.float64)
        return np.clip(((centres - top) / max(h - top, 1) * bands).astype(int), 0, bands - 1)

    def _fit_depth_profile(self, patch_lists: Sequence[Sequence[centrelines.Patch]], parts: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """The (2, bands, 2) table of medians of the normal patches' normalised error and distance (1
        without distances) per kind (on a rail 0, between the rails 1) and band. A cell with fewer than
        ``DEPTH_MIN_PATCHES`` patches takes the nearest band's of its kind that has enough; a kind with
        none keeps 1 (no change). None when ``depth_bands`` is 0."""
        bands = self.config.depth_bands
        self.depth_profile = None
        if bands == 0:
            return
        kinds = np.concatenate([[p.between for p in q] for q in patch_lists if q] or [np.zeros(0, bool)]).astype(int)
        self.depth_profile = np.ones((2, bands, 2))  # _depth_bands reads the count from it
        where = np.concatenate([self._depth_bands(q) for q in patch_lists if q] or [np.zeros(0, int)])
        values = np.stack([
            np.concatenate([e for e, _ in parts] or [np.zeros(0)]),
            np.concatenate([d if d is not None else np.ones(len(e)) for e, d in parts] or [np.zeros(0)]),
        ], axis=1)
        for kind in (0, 1):
            counts = np.bincount(where[kinds == kind], minlength=bands)
            full = np.flatnonzero(counts >= self.DEPTH_MIN_PATCHES)
            for band in range(bands):
                if not len(full):
                    break
                nearest = full[np.abs(full - band).argmin()]
                chosen = (kinds == kind) & (where == nearest)
                self.depth_profile[kind, band] = np.maximum(np.median(values[chosen], axis=0), 1e-9)

    # --- stage 3, pretrained features -----------------------------------------------------------------
    FEATURE_LAYER = "block10"  # stride 16, 112 channels: on held-back scenes it beat block4 and block4 + block10
    FEATURE_STRIDE = 16  # of block10's map
    # Rows of the feature input kept above the region of interest. On held-back scenes (seeds 4, 5, 2;
    # feature_size 384) 64 gave the image AUROC of the whole frame to the fourth decimal; 32 lost up to 0.002.
    FEATURE_MARGIN = 64

    def _uses_features(self) -> bool:
        return self.config.patch_score == "reconstruction_x_features"

    def _feature_extractor(self):
        if self._extractor is None:
            from ml.components.backbones import FeatureExtractor

            self._extractor = FeatureExtractor("efficientnet_lite0", layers=(self.FEATURE_LAYER,)).to(self.device)
        return self._extractor

    def _jitter_shifts(self) -> tuple[tuple[float, float], ...]:
        """(dx, dy) in shares of a patch's side: the copies of each normal training patch the feature
        bank also holds (left, right, up, down by ``bank_jitter``; none when it is 0)."""
        j = self.config.bank_jitter
        return ((-j, 0.0), (j, 0.0), (0.0, -j), (0.0, j)) if j > 0 else ()

    def _patch_features(
        self, images: Sequence[np.ndarray], patch_lists: Sequence[Sequence[centrelines.Patch]],
        shifts: Sequence[tuple[float, float]] = ((0.0, 0.0),),
    ) -> list[torch.Tensor]:
        """Per image, the (K * len(shifts), D) features of its K patches on the CPU, those of shift s in
        rows s*K .. (s+1)*K: the frozen ImageNet Lite0 map of the image at ``feature_input_size`` (the rows
        from ``FEATURE_MARGIN`` above the region of interest), averaged over 2x2 cells of each patch's
        box moved by (dx, dy) times its side, and L2-normalised."""
        cfg = self.config
        h, w = cfg.working_size()
        fh, fw = cfg.feature_input_size()
        sx, sy = fw / w, fh / h
        boxes = []
        for i, patches in enumerate(patch_lists):
            for dx, dy in shifts:
                for patch in patches:
                    x0, y0, x1, y1 = patch.box(w, h)
                    ox, oy = dx * (x1 - x0), dy * (y1 - y0)
                    boxes.append([i, (x0 + ox) * sx, (y0 + oy) * sy, (x1 + ox) * sx, (y1 + oy) * sy])
        if not boxes:
            return [torch.zeros(0, 1) for _ in patch_lists]
        # Every patch lies inside the region of interest, so the network sees only the rows from
        # FEATURE_MARGIN above it down, cut at a whole cell so the cells fall where they do in the whole
        # frame's map. Rows further up barely change a patch's features, and at roi_top 0.5 and
        # feature_size 384 the network takes 35 ms a frame on 2 CPU cores instead of 77.
        top = max(0, int(self.stage2.roi_row(h) * sy - self.FEATURE_MARGIN) // self.FEATURE_STRIDE * self.FEATURE_STRIDE)
        x = torch.from_numpy(np.stack([resize_image(im, (fh, fw))[top:] for im in images])).permute(0, 3, 1, 2)
        fmap = self._feature_extractor()(to_device(x, self.device).float().div_(255.0))[self.FEATURE_LAYER].float().contiguous()
        boxes = torch.tensor(boxes, dtype=torch.float32, device=fmap.device)
        boxes[:, 2] -= top
        boxes[:, 4] -= top
        cells = roi_align(fmap, boxes, output_size=2, spatial_scale=fmap.shape[-2] / x.shape[-2], aligned=True).flatten(1)
        return list(torch.nn.functional.normalize(cells, dim=1).cpu().split([len(p) * len(shifts) for p in patch_lists]))

    def _feature_distances(self, features: torch.Tensor, skip_self: bool = False, bank: torch.Tensor | None = None) -> torch.Tensor:
        """(K,) Euclidean distance of each feature to its nearest in the bank (``bank``, default the
        feature bank; the second nearest with ``skip_self``: for bank members themselves), on the CPU."""
        if len(features) == 0:
            return torch.zeros(0)
        bank = self.feature_bank if bank is None else to_device(bank, self.device)
        distances, _ = nearest_neighbors(to_device(features, self.device), bank, k=2 if skip_self else 1)
        return distances[:, -1].float().cpu()

    def _scores(self, images: Sequence[np.ndarray], pixels: Sequence[np.ndarray], patch_lists) -> list[np.ndarray]:
        """Per image, its patches' scores (``_patch_scores``) from the original images and the patch pixels."""
        errors = self._errors(torch.from_numpy(np.concatenate(pixels)), self.config.error_pooling).numpy()
        distances = None
        if self._uses_features():
            distances = self._feature_distances(torch.cat(self._patch_features(images, patch_lists))).numpy()
        return self._patch_scores(errors, patch_lists, distances)

    def _fit_autoencoder(self, train_patches: torch.Tensor, val_patches: torch.Tensor, source: str, generator, progress) -> None:
        cfg = self.config
        n = len(train_patches)
        if n < 2:
            raise ValueError(
                "no rails were found on the normal training images, so the autoencoder has no patches to learn "
                "from: add normal images that show rails, or more rail masks"
            )
        self.autoencoder = PatchAutoencoder(cfg.patch_size, cfg.conv_channels, cfg.hidden_units, cfg.latent_size).to(self.device)
        stage_cfg = dataclasses.replace(
            cfg, max_steps=cfg.ae_steps, learning_rate=cfg.ae_learning_rate, batch_size=min(cfg.ae_batch_size, n)
        )
        trainer = Trainer(
            stage_cfg, self.autoencoder, device=self.device, steps_per_epoch=math.ceil(n / stage_cfg.batch_size),
            progress=_renamed(progress, "train patch autoencoder"), measure="val_reconstruction_error", higher_is_better=False,
            validation_source=source if len(val_patches) >= 2 else "none",
        )
        batches = epoch_batches(n, stage_cfg.batch_size, generator)

        def train_step(step: int) -> torch.Tensor:
            x = to_device(train_patches[next(batches)], self.device)
            return reconstruction_error(x, self.autoencoder(x)).mean()

        validate = (lambda: float(self._errors(val_patches).mean())) if len(val_patches) >= 2 else None
        self.meta["autoencoder_training"] = trainer.fit(train_step, validate).to_dict()
        if cfg.silence_dead_units:
            self.meta["autoencoder_silenced_units"] = silence_dead_units(self.autoencoder)
        self.meta["training"] = self.meta["autoencoder_training"]

    # --- learning ------------------------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Stage 1 on the images with rail masks, stage 3 on the patches of the normal images; the
        normal error range and the threshold from held-back normal images (section III-C)."""
        cfg = self.config
        generator = seed_everything(cfg.seed)
        check_images([s.image for s in train])
        train, val, source = hold_out_validation(train, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=_usable)
        self._fit_segmentation(train, val, source, generator, progress)
        # Stage 3 draws from its own seed, not from what stage 1 left of the random streams: a stage 1
        # cut short by ``max_seconds`` (a busier machine) would otherwise give the autoencoder another
        # initialisation and batch order, so the same seed and data could give another model.
        self._fit_patch_stage(train, val, source, seed_everything(patch_stage_seed(cfg.seed)), progress)

    def _fit_patch_stage(self, train: Sequence[Sample], val: Sequence[Sample], source: str, generator, progress: ProgressFn) -> None:
        """Stage 3 after stage 1: the autoencoder on the normal training patches, the feature bank,
        the normal range from the held-back normal images' patches, then the threshold."""
        cfg = self.config
        self.segmenter.eval()
        with torch.no_grad():
            # Training patches along the drawn rails; the normal range along the rails stage 1 finds,
            # as at inference (the drawn rails when stage 1 finds none, e.g. after a tiny budget).
            train_patches, train_lists, train_features, shifted = self._normal_patches(train, use_truth=True, jitter=True)
            val_patches, val_lists, val_features, _ = self._normal_patches(val, use_truth=False)
            if len(val_patches) < 2:
                val_patches, val_lists, val_features, _ = self._normal_patches(val, use_truth=True)
        progress("extract patches", 1.0, {"train_patches": float(len(train_patches)), "validation_patches": float(len(val_patches))})
        self._fit_autoencoder(train_patches, val_patches, source, generator, progress)
        self.autoencoder.eval()
        held_back = len(val_patches) >= 2
        with torch.no_grad():
            reference, lists = (val_patches, val_lists) if held_back else (train_patches, train_lists)
            raw = self._errors(reference, cfg.error_pooling)
            self.error_reference = float(raw.median())
            distances = None
            if self._uses_features():
                self._fit_feature_bank(torch.cat([train_features, shifted]) if len(shifted) else train_features, progress)
                if held_back:
                    distances = self._feature_distances(val_features)
                else:
                    # The range from the training patches themselves, each skipping its own row: against
                    # them alone, not their shifted copies, which lie next to them.
                    distances = self._feature_distances(train_features, skip_self=True, bank=train_features)
                self.feature_reference = float(distances.median())
                distances = distances.numpy()
            self._fit_depth_profile(lists, self._normalized_parts(raw.numpy(), lists, distances))
            errors = np.concatenate(self._patch_scores(raw.numpy(), lists, distances))
        self.error_range = (float(errors.min()), float(errors.max()))
        self.meta.update(
            {
                "error_range": list(self.error_range),
                "error_reference": self.error_reference,
                "feature_reference": self.feature_reference,
                "feature_bank_size": int(len(self.feature_bank)) if self.feature_bank is not None else 0,
                "depth_profile": None if self.depth_profile is None else {
                    "bands": int(self.depth_profile.shape[1]),
                    "error": np.round(self.depth_profile[..., 0], 4).tolist(),
                    "distance": np.round(self.depth_profile[..., 1], 4).tolist(),
                },
                "error_range_from": "held-back normal images" if reference is val_patches else "training images",
                "train_patches": int(len(train_patches)),
                "validation_patches": int(len(val_patches)),
            }
        )
        self._calibrate(val, progress)

    def _fit_feature_bank(self, features: torch.Tensor, progress: ProgressFn) -> None:
        """The normal training patches' features, thinned to ``feature_bank_max`` by a greedy k-centre
        coreset (the one PatchCore uses) when there are more. (Fewer than two patches never get here:
        ``_fit_autoencoder`` refuses them first.)"""
        limit = self.config.feature_bank_max
        if len(features) > limit:
            features = features[greedy_coreset(features, limit / len(features), seed=self.config.seed)]
        self.feature_bank = to_device(features.contiguous(), self.device)
        progress("feature bank", 1.0, {"feature_bank_size": float(len(features))})

    def _calibrate(self, val: Sequence[Sample], progress: ProgressFn) -> None:
        """Threshold on the deviation map: 1.0 for ``minmax`` (the normal range itself, III-C);
        other policies through ``ml.components.calibration`` on the validation images."""
        from ml import thresholds
        from ml.components.calibration import calibrate, validation_evidence

        cfg = self.config
        if cfg.threshold_policy == "minmax":
            self.threshold = 1.0
            self.meta["threshold_source"] = f"normal reconstruction-error range [{self.error_range[0]:.4g}, {self.error_range[1]:.4g}] (paper's min/max)"
            evidence = validation_evidence(self, val)
            if evidence is not None:
                maps = [np.asarray(m) for m in evidence[0]]
                truths = [np.zeros(m.shape, bool) if mask is None else binarize_mask(mask) > 0 for m, mask in zip(maps, evidence[1])]
                self.normalization = thresholds.normalization_from_maps(maps, truths, self.threshold)
            else:
                self.normalization = thresholds.normalization_for(1.0, np.array([0.0]))
        else:
            evidence = validation_evidence(self, val)
            if evidence is None:
                self.threshold = 1.0
                self.normalization = thresholds.normalization_for(1.0, np.array([0.0]))
                self.meta["threshold_source"] = "no validation images: the normal range (1.0)"
            else:
                calibrate(self, *evidence)
                if self.threshold is None:
                    self.threshold = 1.0
        progress("calibrate", 1.0, {"threshold": float(self.threshold)})

    # --- inference -----------------------------------------------------------------------------------
    def _deviation(self, errors: np.ndarray) -> np.ndarray:
        lo, hi = self.error_range or (0.0, 1.0)
        errors = np.maximum(errors, 1e-9)
        above = errors / max(hi, 1e-9)
        return np.maximum(above, lo / errors) if self.config.range_bounds == "both" else above

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        self.segmenter.eval()
        self.autoencoder.eval()
        cfg = self.config
        h, w = cfg.working_size()
        scores, maps, extras = [], [], []
        for start in range(0, len(images), cfg.batch_size):
            chunk = images[start : start + cfg.batch_size]
            patch_lists, pixels, probabilities = self._patches(self._stack(chunk), originals=chunk)
            for image, patches, patch_scores, probability in zip(chunk, patch_lists, self._scores(chunk, pixels, patch_lists), probabilities):
                height, width = image.shape[:2]
                sx, sy = width / w, height / h
                deviation = self._deviation(patch_scores)
                small = np.zeros((h, w), np.float32)
                boxes = []
                for patch, d in zip(patches, deviation):
                    x0, y0, x1, y1 = patch.box(w, h)
                    small[y0:y1, x0:x1] = np.maximum(small[y0:y1, x0:x1], d)
                    if self.threshold is not None and d > self.threshold:
                        boxes.append({
                            "x": round(x0 * sx, 1), "y": round(y0 * sy, 1), "width": round((x1 - x0) * sx, 1),
                            "height": round((y1 - y0) * sy, 1), "score": float(d), "rail": patch.rail, "patch": patch.index, "half_step": patch.half_step, "between_rails": patch.between,
                        })
                full = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
                maps.append(full)
                scores.append(float(full.max()) if full.size else 0.0)
                # The rail mask at the image's resolution from the upsampled probabilities (smoother
                # and closer to the drawn rails than the working-size mask upsampled).
                upsampled = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
                rail_mask = (upsampled > self._rail_cut()).astype(np.uint8) * 255
                extras.append({"rail_mask": rail_mask, "boxes": boxes, "rails": len({p.rail for p in patches}), "patches": len(patches)})
        predictions = self._predictions(scores, maps)
        predictions.extras = extras
        return predictions

    # --- persistence -----------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Any]:
        return {
            "segmenter": {k: v.detach().cpu() for k, v in self.segmenter.state_dict().items()},
            "autoencoder": {k: v.detach().cpu() for k, v in self.autoencoder.state_dict().items()},
            "error_range": list(self.error_range) if self.error_range else None,
            "error_reference": self.error_reference,
            "feature_bank": self.feature_bank.detach().cpu() if self.feature_bank is not None else None,
            "feature_reference": self.feature_reference,
            "rail_threshold": self.rail_threshold,
            "depth_profile": torch.from_numpy(self.depth_profile) if self.depth_profile is not None else None,
        }

    def load_state_tensors(self, state: dict[str, Any]) -> None:
        self.segmenter.load_state_dict(state["segmenter"])
        self.autoencoder.load_state_dict(state["autoencoder"])
        self.error_range = tuple(state["error_range"]) if state.get("error_range") else None
        self.rail_threshold = state.get("rail_threshold")  # absent in models saved before it was calibrated
        if "error_reference" not in state:
            # Saved before pooled, scene-normalised errors: its range holds the paper's raw eq. 4 errors.
            self.config = dataclasses.replace(self.config, error_pooling=1, scene_normalization=False, range_bounds="both")
        self.error_reference = state.get("error_reference")
        if "feature_bank" not in state:
            # Saved before the feature distance and the crops from the frame: its autoencoder learnt
            # working-size crops, and its range holds reconstruction scores alone.
            self.config = dataclasses.replace(self.config, patch_score="reconstruction", patch_resolution="working")
        self.feature_bank = state["feature_bank"].to(self.device) if state.get("feature_bank") is not None else None
        self.feature_reference = state.get("feature_reference")
        profile = state.get("depth_profile")  # absent in models saved before it (their config says 0 bands)
        self.depth_profile = profile.double().numpy() if profile is not None else None
        self.segmenter.to(self.device).eval()
        self.autoencoder.to(self.device).eval()


def _renamed(progress: ProgressFn, stage: str) -> ProgressFn:
    """The shared loop reports stage "train"; name which network is training."""
    def report(name: str, fraction: float, metrics: dict[str, float] | None = None) -> None:
        progress(stage if name == "train" else name, fraction, metrics)

    return report

"""What the image-reconstruction pipelines (``ae``, ``riad``, ``smai``, ``ganomaly``,
``utad``) share: they learn from normal images only, work on whole images at the
working resolution, and answer with a per-pixel map of how badly each region
was reconstructed.

:class:`ReconstructionPipeline` owns the parts that are the same for all of
them: the held-back validation split of normal images, images as one
``(N, 3, S, S)`` tensor in [0, 1], the shared training loop (validation =
the reconstruction objective on held-back normal images), threshold
calibration on validation maps (else on training maps), batched inference
back to each input's size, and save/load of every network's weights. A
pipeline says what its networks are (:meth:`build_model`), what one training
step minimises (:meth:`loss`, or :meth:`train_step` for adversarial
training), and how a batch becomes maps and scores (:meth:`anomaly_maps`).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate, validation_evidence
from ml.components.features import batches, images_to_tensor, maps_to_input_sizes
from ml.components.runtime import bfloat16_inference, resolve_device, seed_everything
from ml.components.training import Trainer, epoch_batches, to_device
from ml.data.splits import hold_out_validation, is_anomalous


def is_normal(sample: Sample) -> bool:
    """A sample a normal-only model may learn from or validate on: labelled normal, or with an empty mask."""
    return sample.label == 0 or (sample.label is None and sample.mask is not None and not is_anomalous(sample))


class ReconstructionPipeline(Pipeline):
    """Base of the normal-only reconstruction pipelines (see the module docstring).

    Subclasses set ``name``, ``config_class``, ``description`` and implement
    :meth:`build_model`, :meth:`loss` and :meth:`anomaly_maps`.
    """

    supervision = "unsupervised"
    # Inference under bfloat16 autocast where the device computes it natively (CUDA, or a CPU
    # with AVX512-BF16 / AMX) and ``mixed_precision`` is on: set by the pipelines whose maps
    # were measured to keep their scores that way (bench/utad_combine.py); float32 elsewhere.
    infers_in_bfloat16 = False

    def __init__(self, config=None):
        super().__init__(config)
        self.device = resolve_device(self.config.device)
        self.model = self.build_model().to(self.device)
        self.fitted = False

    # --- what a pipeline defines -----------------------------------------------------
    def build_model(self) -> nn.Module:
        """Every network that training updates (an ``nn.ModuleDict`` when there are several)."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor, aux: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """The training objective on a batch ``x`` (B, 3, S, S) in [0, 1]; also the validation measure.

        ``aux``: the rows of :meth:`auxiliary` for this batch (None when there is none).
        """
        raise NotImplementedError

    def anomaly_maps(self, x: torch.Tensor, aux: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) in [0, 1] -> (maps (B, S, S), image scores (B,)), in eval mode."""
        raise NotImplementedError

    def auxiliary(self, images: torch.Tensor) -> torch.Tensor | None:
        """Per-image data computed once before training and at inference (e.g. superpixels); default none."""
        return None

    def optimizers(self) -> dict[str, torch.optim.Optimizer] | None:
        """Named optimizers for adversarial training; None: the loop's one Adam over :attr:`model`."""
        return None

    def train_step(self, trainer: Trainer, x: torch.Tensor, aux: torch.Tensor | None, generator: torch.Generator):
        """One optimisation step; default: the loop minimises :meth:`loss`. Adversarial pipelines
        call ``trainer.backward_step`` per optimizer and return a dict with a ``loss`` entry."""
        return self.loss(x, aux, generator)

    def before_training(self, images: torch.Tensor, val_images: torch.Tensor | None, progress: ProgressFn) -> None:
        """Hook for work before the loop (e.g. a first network to train); ``val_images``: the
        held-back normal images, or None."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    # --- learning ----------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        cfg = self.config
        if not train:
            raise ValueError(f"{self.name} needs at least one normal training image")
        check_images([s.image for s in train])
        progress("prepare", 0.0, {"train_images": float(len(train))})
        generator = seed_everything(cfg.seed)
        train, val, source = hold_out_validation(
            train, val, fraction=cfg.val_fraction, minimum=cfg.val_min_images, seed=cfg.seed, usable=is_normal
        )
        images = images_to_tensor([s.image for s in train], cfg.image_size)
        aux = self.auxiliary(images)
        normal_val = [s.image for s in val if source == "held back" or is_normal(s)]
        val_images = images_to_tensor(normal_val, cfg.image_size) if normal_val else None
        val_aux = self.auxiliary(val_images) if val_images is not None else None
        self.meta.update({"train_images": len(train), "validation_images": len(val)})
        progress("prepare", 1.0, {"train_images": float(len(train)), "validation_images": float(len(val))})
        self.before_training(images, val_images, progress)

        trainer = Trainer(
            cfg, self.model, device=self.device, steps_per_epoch=math.ceil(len(images) / cfg.batch_size),
            progress=progress, measure="val_loss", higher_is_better=False,
            optimizers=self.optimizers(), validation_source=source,
        )
        order = epoch_batches(len(images), cfg.batch_size, generator)

        def train_step(step: int):
            idx = next(order)
            x = to_device(images[idx], self.device)
            return self.train_step(trainer, x, None if aux is None else to_device(aux[idx], self.device), generator)

        def validate() -> float:
            # The same masks / noise at every validation, so the curve measures the weights only.
            fixed = torch.Generator().manual_seed(cfg.seed + 1)
            total, count = 0.0, 0
            for start in range(0, len(val_images), cfg.batch_size):
                x = to_device(val_images[start : start + cfg.batch_size], self.device)
                a = None if val_aux is None else to_device(val_aux[start : start + cfg.batch_size], self.device)
                total += float(self.loss(x, a, fixed)) * len(x)
                count += len(x)
            return total / count

        report = trainer.fit(train_step, validate if val_images is not None else None)
        self.model.eval()
        self.fitted = True
        self.meta["training"] = report.to_dict()
        self._calibrate(train, val, progress)

    def _calibrate(self, train: Sequence[Sample], val: Sequence[Sample], progress: ProgressFn) -> None:
        """Threshold per ``threshold_policy`` from the validation maps, else from the training images' maps."""
        evidence = validation_evidence(self, val)
        if evidence is not None:
            maps, masks = evidence
        else:
            maps, masks = list(self.predict([s.image for s in train]).maps), [None] * len(train)
        calibrate(self, maps, masks)
        progress("calibrate", 1.0, {"threshold": float(self.threshold)} if self.threshold is not None else None)

    # --- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        """Maps at each input's size (bilinear from the working resolution) and image scores."""
        check_images(images)
        if not self.fitted:
            raise RuntimeError(f"{self.name} is not fitted: call fit() or load a saved model first")
        self.model.eval()
        maps: list[np.ndarray] = []
        scores: list[float] = []
        for batch in batches(images, self.config.batch_size):
            x = to_device(images_to_tensor(batch, self.config.image_size), self.device)
            aux = self.auxiliary(x.cpu())
            with bfloat16_inference(self.device, self.infers_in_bfloat16 and self.config.mixed_precision):
                working, batch_scores = self.anomaly_maps(x, None if aux is None else to_device(aux, self.device))
            maps.extend(maps_to_input_sizes(working.float(), batch))
            scores.extend(float(s) for s in batch_scores.float().cpu())
        return self._predictions(scores, maps)

    # --- persistence -----------------------------------------------------------------------
    def state_tensors(self) -> dict:
        if not self.fitted:
            raise RuntimeError(f"{self.name} is not fitted: nothing to save")
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}, **self.extra_state()}

    def load_state_tensors(self, state: dict) -> None:
        self.load_extra_state(state)
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()
        self.fitted = True

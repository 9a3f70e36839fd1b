"""PatchCore pipeline: feature extraction, coreset memory bank, anomaly maps,
threshold calibration, save/load."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ml.base import Pipeline, Predictions, ProgressFn, Sample, check_images, no_progress
from ml.components.calibration import calibrate, validation_evidence
from ml.components.coreset import greedy_coreset
from ml.components.features import (
    batches,
    gaussian_blur,
    images_to_tensor,
    join_maps,
    maps_to_input_sizes,
    upsample,
)
from ml.components.runtime import autocast, resolve_device, seed_everything
from ml.components.search import auto_lists, ivf_build
from ml.data.loader import prefetch
from ml.pipelines.patchcore.config import DESCRIPTION, SUPERVISION, PatchCoreConfig
from ml.pipelines.patchcore.torch_model import PatchCoreModel
from ml.registry import register


@register
class PatchCorePipeline(Pipeline):
    name = "patchcore"
    supervision = SUPERVISION
    config_class = PatchCoreConfig
    description = DESCRIPTION

    def __init__(self, config=None):
        super().__init__(config)
        cfg: PatchCoreConfig = self.config
        self.device = resolve_device(cfg.device)
        self.model = PatchCoreModel(
            cfg.backbone,
            cfg.layers,
            cfg.weights_path,
            cfg.reflection_padding,
            cfg.pooling_size,
            cfg.feature_dim,
            cfg.num_neighbors,
            cfg.search_probes,
        ).to(self.device)

    # --- learning ------------------------------------------------------------------
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Memory bank from the normal ``train`` images; threshold from ``val`` or leave-one-out train scores."""
        cfg: PatchCoreConfig = self.config
        if not train:
            raise ValueError("patchcore needs at least one normal training image")
        images = [s.image for s in train]
        check_images(images)
        seed_everything(cfg.seed)
        progress("features", 0.0, None)
        embeddings = []
        with torch.inference_mode():
            for i, (_, x) in enumerate(prefetch(batches(images, cfg.batch_size), self._prepare)):
                embeddings.append(self._embed(x).cpu())
                progress("features", min(1.0, (i + 1) * cfg.batch_size / len(images)), None)
        embedding = torch.cat(embeddings)  # (N, D, h, w)
        grid = tuple(embedding.shape[2:])
        features = PatchCoreModel.flatten(embedding)  # (N * h * w, D)
        del embeddings, embedding
        chosen = greedy_coreset(
            features.to(self.device),
            cfg.coreset_ratio,
            cfg.coreset_projection_dim,
            cfg.coreset_shard_size,
            cfg.seed,
            progress=lambda fraction: progress("coreset", fraction, None),
        )
        progress("index", 0.0, None)
        chosen = self._set_memory_bank(features[chosen].to(self.device), chosen)
        progress("index", 1.0, None)
        self.meta.update({"train_images": len(images), "memory_bank_size": int(chosen.numel())})
        self._calibrate(train, val, features, grid, chosen, progress)

    def _set_memory_bank(self, bank: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor | None:
        """Store ``bank`` (K, D), with an IVF index when ``search`` asks for one at this size.

        The index sorts the bank by cell; ``rows`` (K,), whatever the caller
        tracks per bank row, is returned in the same order. The index is built
        from the config's seed, so the same bank always gives the same index.
        """
        cfg: PatchCoreConfig = self.config
        if not cfg.uses_index(bank.shape[0]):
            self.model.set_memory_bank(bank)
            self.meta["search"] = "exact"
            return rows
        lists = min(cfg.search_lists or auto_lists(bank.shape[0]), bank.shape[0])
        order, centroids, offsets = ivf_build(bank, lists, cfg.seed)
        self.model.set_memory_bank(bank[order], centroids, offsets)
        self.meta["search"] = f"ivf ({lists} cells, {min(cfg.search_probes, lists)} probed)"
        return None if rows is None else rows[order.to(rows.device)]

    def _calibrate(
        self,
        train: Sequence[Sample],
        val: Sequence[Sample] | None,
        features: torch.Tensor,
        grid: tuple[int, int],
        chosen: torch.Tensor,
        progress: ProgressFn,
    ) -> None:
        """Threshold on anomaly-map values per ``threshold_policy`` (ml.thresholds).

        Normal evidence comes from ``val`` when it has usable images; else from
        up to ``calibration_images`` training images, each scored against the
        memory bank without the rows it contributed (its own patches would
        otherwise score near zero and make the threshold far too low), through
        the same search as ``predict``. Their patch features are reused from
        ``features`` (N * h * w, D), not recomputed; ``chosen`` (K,) names the
        feature row of each bank row.
        """
        cfg: PatchCoreConfig = self.config
        evidence = validation_evidence(self, val)
        if evidence is not None:
            maps, masks = evidence
        else:
            per_image = grid[0] * grid[1]
            sources = chosen // per_image  # the training image each bank row came from
            count = min(len(train), cfg.calibration_images)
            picks = np.random.default_rng(cfg.seed).choice(len(train), size=count, replace=False)
            maps, masks = [], []
            with torch.inference_mode():
                for step, index in enumerate(int(i) for i in picks):
                    hidden = (sources == index).to(self.device)
                    if bool(hidden.all()):
                        break
                    rows = features[index * per_image : (index + 1) * per_image].to(self.device)
                    embedding = rows.view(1, *grid, -1).permute(0, 3, 1, 2)
                    maps.extend(self._maps(embedding, [train[index].image], hidden)[0])
                    masks.append(None)
                    progress("calibrate", (step + 1) / max(1, count), None)
        calibrate(self, maps, masks)
        progress("calibrate", 1.0, {"threshold": float(self.threshold)} if self.threshold is not None else None)

    # --- inference -----------------------------------------------------------------
    def _prepare(self, images: Sequence[np.ndarray]) -> tuple[Sequence[np.ndarray], torch.Tensor]:
        """CPU side of a batch (runs in a prefetch thread): resized (N, 3, S, S) tensor in [0, 1],
        in pinned memory when it goes to a GPU, so the copy can overlap computation."""
        x = images_to_tensor(images, self.config.image_size)
        return images, (x.pin_memory() if self.device.type == "cuda" else x)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        with autocast(self.device):
            return self.model.embed(x).float()

    def _maps(
        self, embedding: torch.Tensor, images: Sequence[np.ndarray], hidden: torch.Tensor | None = None
    ) -> tuple[np.ndarray | list[np.ndarray], torch.Tensor]:
        """Patch features (N, D, h, w) of ``images`` -> maps at input resolution ((N, H, W) when
        the images share a size) and image scores (bank rows where ``hidden`` is true left out)."""
        patch_scores, image_scores = self.model.score_embedding(embedding, hidden)
        maps = upsample(patch_scores, self.config.image_size)
        maps = gaussian_blur(maps, self.config.blur_sigma)
        return maps_to_input_sizes(maps, images), image_scores.float().cpu()

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        check_images(images)
        if self.model.memory_bank.numel() == 0:
            raise RuntimeError("patchcore is not fitted: call fit() or load a saved model first")
        self.model.eval()
        parts, scores = [], []
        # The next batches are resized in a background thread while this one is scored.
        for batch, x in prefetch(batches(images, self.config.batch_size), self._prepare):
            batch_maps, batch_scores = self._maps(self._embed(x), batch)
            parts.append(batch_maps)
            scores.append(batch_scores)
        return self._predictions(torch.cat(scores).numpy() if scores else [], join_maps(parts))

    # --- persistence ---------------------------------------------------------------
    def state_tensors(self) -> dict:
        state = {"memory_bank": self.model.memory_bank.detach().cpu().contiguous()}
        if self.model.has_index:
            state["ivf_centroids"] = self.model.ivf_centroids.detach().cpu().contiguous()
            state["ivf_offsets"] = self.model.ivf_offsets.detach().cpu()
        return state

    def load_state_tensors(self, state: dict) -> None:
        """The stored bank and index; a bank saved without an index that ``search`` wants
        (an artifact from before indexes) is indexed now, deterministically."""
        bank = state["memory_bank"]
        if bank.ndim != 2 or bank.shape[1] != self.model.embedding_dim:
            raise ValueError(
                f"memory bank of shape {tuple(bank.shape)} does not fit this configuration "
                f"(expected (K, {self.model.embedding_dim}))"
            )
        if "ivf_centroids" in state:
            self.model.set_memory_bank(bank.to(self.device), state["ivf_centroids"], state["ivf_offsets"])
        else:
            self._set_memory_bank(bank.to(self.device))

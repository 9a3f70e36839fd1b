"""PatchCore as a pure ``nn.Module`` (Roth et al., "Towards Total Recall in
Industrial Anomaly Detection", CVPR 2022).

- ``embed``: locally aware patch features (section 3.1): each chosen layer is
  average-pooled over a p x p neighbourhood (stride 1), deeper maps are
  bilinearly upsampled to the grid of the shallowest one, and the maps are
  concatenated channel-wise (optionally average-pooled down to a fixed
  number of channels, as the paper does to 1024).
- ``memory_bank``: the coreset-subsampled training patch features (section
  3.2), filled by the pipeline; with an inverted-file index
  (``ivf_centroids``/``ivf_offsets``, :mod:`ml.components.search`) the rows
  are sorted by cell and only the ``search_probes`` nearest cells are searched.
- ``forward``: nearest-neighbour distance of every test patch to the memory
  bank = patch anomaly scores, and the paper's image score (section 3.3, eq. 7).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ml.components.backbones import FeatureExtractor
from ml.components.coreset import nearest_neighbors
from ml.components.search import ivf_search


class PatchCoreModel(nn.Module):
    def __init__(
        self,
        backbone: str,
        layers: Sequence[str],
        weights_path: str | None = None,
        reflection_padding: bool = False,
        pooling_size: int = 3,
        feature_dim: int | None = None,
        num_neighbors: int = 9,
        search_probes: int = 16,
    ):
        super().__init__()
        self.extractor = FeatureExtractor(backbone, layers, weights_path, reflection_padding)
        self.pooling_size = pooling_size
        self.feature_dim = feature_dim
        self.num_neighbors = num_neighbors
        self.search_probes = search_probes
        self.register_buffer("memory_bank", torch.empty(0, self.embedding_dim))
        self.register_buffer("bank_sq_norms", torch.empty(0))
        self.register_buffer("ivf_centroids", torch.empty(0, self.embedding_dim))
        self.register_buffer("ivf_offsets", torch.empty(0, dtype=torch.long))

    @property
    def embedding_dim(self) -> int:
        return self.feature_dim or sum(self.extractor.channels.values())

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) images in [0, 1] -> (N, D, h, w) patch features on the shallowest layer's grid."""
        maps = list(self.extractor(images).values())
        size = maps[0].shape[-2:]
        pad = self.pooling_size // 2
        pooled = []
        for feature in maps:
            if self.pooling_size > 1:
                # count_include_pad=False: border patches average only real neighbours.
                feature = F.avg_pool2d(feature, self.pooling_size, 1, pad, count_include_pad=False)
            if feature.shape[-2:] != size:
                feature = F.interpolate(feature, size=size, mode="bilinear", align_corners=False)
            pooled.append(feature)
        embedding = torch.cat(pooled, dim=1).float()
        if self.feature_dim:
            n, c, h, w = embedding.shape
            flat = embedding.permute(0, 2, 3, 1).reshape(-1, 1, c)
            embedding = F.adaptive_avg_pool1d(flat, self.feature_dim).reshape(n, h, w, -1).permute(0, 3, 1, 2)
        return embedding

    @staticmethod
    def flatten(embedding: torch.Tensor) -> torch.Tensor:
        """(N, D, h, w) -> (N * h * w, D), row-major over images then positions."""
        return embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1])

    def set_memory_bank(
        self, bank: torch.Tensor, centroids: torch.Tensor | None = None, offsets: torch.Tensor | None = None
    ) -> None:
        """Bank (K, D); with ``centroids`` (L, D) and ``offsets`` (L + 1,) an IVF index whose
        cell c holds rows ``offsets[c]:offsets[c + 1]`` of ``bank`` (exact search without)."""
        self.memory_bank = bank.float().contiguous()
        self.bank_sq_norms = (self.memory_bank * self.memory_bank).sum(1)
        device = self.memory_bank.device
        if centroids is None or offsets is None:
            centroids, offsets = torch.empty(0, bank.shape[1]), torch.empty(0, dtype=torch.long)
        elif offsets.numel() != centroids.shape[0] + 1 or int(offsets[-1]) != bank.shape[0]:
            raise ValueError(
                f"index of {centroids.shape[0]} cells with offsets {tuple(offsets.shape)} does not fit a bank of {bank.shape[0]} rows"
            )
        self.ivf_centroids = centroids.float().to(device).contiguous()
        self.ivf_offsets = offsets.long().to(device)

    @property
    def has_index(self) -> bool:
        return self.ivf_centroids.shape[0] > 0

    def nearest(self, patches: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances (M,) and bank indices (M,) of the nearest bank row of each patch (M, D),
        through the index when there is one; rows where ``hidden`` (K,) is true are skipped."""
        sq_norms = self._sq_norms(hidden)
        if self.has_index:
            distances, index = ivf_search(patches, self.memory_bank, sq_norms, self.ivf_centroids, self.ivf_offsets, self.search_probes)
        else:
            distances, index = nearest_neighbors(patches, self.memory_bank, 1, sq_norms)
        return distances.squeeze(1), index.squeeze(1)

    def _sq_norms(self, hidden: torch.Tensor | None) -> torch.Tensor:
        if hidden is None:
            return self.bank_sq_norms
        return self.bank_sq_norms.masked_fill(hidden.to(self.bank_sq_norms.device), float("inf"))

    def score_embedding(self, embedding: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D, h, w) patch features -> patch scores (N, h, w) and image scores (N,).

        ``hidden`` (K,) bool: bank rows to leave out (leave-one-out calibration).
        """
        n, d, h, w = embedding.shape
        patches = self.flatten(embedding)
        distances, nn_index = self.nearest(patches, hidden)
        patch_scores = distances.view(n, h * w)
        nn_index = nn_index.view(n, h * w)
        image_scores = self.image_scores(patches.view(n, h * w, d), patch_scores, nn_index, hidden)
        return patch_scores.view(n, h, w), image_scores

    def image_scores(
        self, patches: torch.Tensor, patch_scores: torch.Tensor, nn_index: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Image score of eq. 7: s = (1 - softmax_j ||m_test* - m_j||, j in N_b(m*), at m*) * s*.

        s* is the largest patch score, m_test* that patch and m* its nearest
        bank feature; N_b(m*) are the b nearest bank features of m* (m*
        included). The weight grows when m* sits in a sparse part of the bank,
        i.e. the test patch is closest to a rare normal pattern. The support is
        found by exact search: it is one query per image.
        """
        max_scores, max_positions = patch_scores.max(dim=1)
        rows = torch.arange(patches.shape[0], device=patches.device)
        if self.num_neighbors <= 1:
            return max_scores
        test_patch = patches[rows, max_positions]  # (N, D)
        nearest = self.memory_bank[nn_index[rows, max_positions]]  # (N, D)
        _, support = nearest_neighbors(nearest, self.memory_bank, self.num_neighbors, self._sq_norms(hidden))
        support_features = self.memory_bank[support]  # (N, b, D)
        distances = torch.linalg.vector_norm(support_features - test_patch.unsqueeze(1), dim=2)
        # The support is sorted by distance to m*, so m* itself is column 0.
        weights = 1.0 - torch.softmax(distances, dim=1)[:, 0]
        return weights * max_scores

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) in [0, 1] -> patch scores (N, h, w), image scores (N,)."""
        return self.score_embedding(self.embed(images))

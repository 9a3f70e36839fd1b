"""Balanced multi-scale patch sampling for the ``multilevel`` pipeline (thesis section 4.1.2).

"To augment the training dataset and introduce scale invariance to our model,
we extracted patches from images at various scales. [...] for each anomalous
patch extracted, we also extracted a random image patch that did not contain
an anomaly." A patch's label is its centre pixel's: anomalous when the centre
lies inside an annotated region. Every batch is half anomalous and half normal
patches, each drawn uniformly over all such pixels of all images at all scales.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ml.data.io import resize_image, resize_mask
from ml.pipelines.multilevel.torch_model import CROP, pad_for_patches


class BalancedPatchSampler:
    """Patches with context (``CROP`` x ``CROP``, the 33x33 patch plus 8 px each side) around
    pixels of ``images`` rescaled to each ``size * scale``.

    ``images``: (H, W, 3) uint8; ``masks``: (H, W) bool, True = anomalous.
    ``sample(n, generator)`` -> crops (n, 3, CROP, CROP) float in [0, 1] and
    labels (n,) float: the first ``n // 2`` anomalous, the rest normal (all
    normal when no image has an anomalous pixel).
    """

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], size: int, scales: Sequence[float]):
        self.padded: list[torch.Tensor] = []  # (3, H + 2 PAD, W + 2 PAD) uint8
        self.masks: list[torch.Tensor] = []  # (H, W) bool
        self.positives: list[torch.Tensor] = []  # flat indices of anomalous pixels
        for image, mask in zip(images, masks):
            for scale in scales:
                side = max(8, int(round(size * scale)))
                pixels = torch.from_numpy(resize_image(image, side)).permute(2, 0, 1).float()
                self.padded.append(pad_for_patches(pixels[None])[0].round().to(torch.uint8))
                small = torch.from_numpy(resize_mask(mask.astype(np.uint8), side) > 0)
                self.masks.append(small)
                self.positives.append(small.flatten().nonzero()[:, 0].to(torch.int32))
        self.positive_counts = torch.tensor([len(p) for p in self.positives], dtype=torch.float64)
        self.negative_counts = torch.tensor([m.numel() for m in self.masks], dtype=torch.float64) - self.positive_counts
        if float(self.negative_counts.sum()) <= 0:
            raise ValueError("every pixel of every training image is anomalous: the classifier has no normal patch to learn from")

    @property
    def has_positives(self) -> bool:
        return float(self.positive_counts.sum()) > 0

    def _crop(self, entry: int, flat: int) -> torch.Tensor:
        w = self.masks[entry].shape[1]
        y, x = divmod(flat, w)
        # Centre pixel (y, x) of the unpadded image sits at (y + PAD, x + PAD): the crop starts at (y, x).
        return self.padded[entry][:, y : y + CROP, x : x + CROP]

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n_pos = n // 2 if self.has_positives else 0
        crops, labels = [], []
        if n_pos:
            entries = torch.multinomial(self.positive_counts, n_pos, replacement=True, generator=generator).tolist()
            for entry in entries:
                pick = int(torch.randint(len(self.positives[entry]), (1,), generator=generator))
                crops.append(self._crop(entry, int(self.positives[entry][pick])))
                labels.append(1.0)
        entries = torch.multinomial(self.negative_counts, n - n_pos, replacement=True, generator=generator).tolist()
        for entry in entries:
            mask = self.masks[entry].flatten()
            # Rejection sampling: an entry drawn by its count of normal pixels has one, and most pixels are normal.
            while True:
                flat = int(torch.randint(mask.numel(), (1,), generator=generator))
                if not mask[flat]:
                    break
            crops.append(self._crop(entry, flat))
            labels.append(0.0)
        return torch.stack(crops).float().div_(255.0), torch.tensor(labels)

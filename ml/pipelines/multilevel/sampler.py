"""Balanced multi-scale patch sampling for the ``multilevel`` pipeline (thesis section 4.1.2).

"To augment the training dataset and introduce scale invariance to our model,
we extracted patches from images at various scales. [...] for each anomalous
patch extracted, we also extracted a random image patch that did not contain
an anomaly." A patch's label is its centre pixel's: anomalous when the centre
lies inside an annotated region.

Patches are not cut one by one: a training step takes ``B`` tiles of T x T
patch centres (each with the 24 px margin their 33x33 patches and the
convolutions' context need), so the encoder's work is shared by the T*T
patches of a tile exactly as at inference (see ``torch_model``). Half of the
tiles are placed over a random anomalous pixel (chosen uniformly over all
anomalous pixels of all images at all scales), the other half anywhere. Then
:func:`balanced_rows` picks as many normal as anomalous patch centres among
the tiles' centres: the classifier sees balanced classes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ml.data.io import resize_image, resize_mask
from ml.pipelines.multilevel.torch_model import PAD, pad_for_patches


class BalancedPatchSampler:
    """Tiles of patch centres from ``images`` rescaled to each ``size * scale``.

    ``images``: (H, W, 3) uint8; ``masks``: (H, W) bool, True = anomalous.
    ``sample(b, tile, generator)`` -> tiles (b, 3, t + 48, t + 48) float in
    [0, 1] and the labels of their centres (b, t, t) bool, t = ``tile``
    (smaller when an image is smaller).
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
        self.areas = torch.tensor([m.numel() for m in self.masks], dtype=torch.float64)
        if float((self.areas - self.positive_counts).sum()) <= 0:
            raise ValueError("every pixel of every training image is anomalous: the classifier has no normal patch to learn from")
        self.smallest_side = min(min(m.shape) for m in self.masks)

    @property
    def has_positives(self) -> bool:
        return float(self.positive_counts.sum()) > 0

    def _tile(self, entry: int, top: int, left: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Centre (y, x) sits at (y + PAD, x + PAD) in the padded image: the tile of centres
        # [top, top + t) needs padded rows [top, top + t + 2 PAD).
        tile = self.padded[entry][:, top : top + t + 2 * PAD, left : left + t + 2 * PAD]
        return tile, self.masks[entry][top : top + t, left : left + t]

    def sample(self, b: int, tile: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        t = min(tile, self.smallest_side)
        n_pos = b // 2 if self.has_positives else 0
        tiles, labels = [], []
        for i in range(b):
            if i < n_pos:
                entry = int(torch.multinomial(self.positive_counts, 1, generator=generator))
                flat = int(self.positives[entry][int(torch.randint(len(self.positives[entry]), (1,), generator=generator))])
                h, w = self.masks[entry].shape
                y, x = divmod(flat, w)
                # A random placement of the tile that contains (y, x).
                dy, dx = (int(v) for v in torch.randint(t, (2,), generator=generator))
                top, left = min(max(0, y - dy), h - t), min(max(0, x - dx), w - t)
            else:
                entry = int(torch.multinomial(self.areas, 1, generator=generator))
                h, w = self.masks[entry].shape
                top, left = (int(torch.randint(limit - t + 1, (1,), generator=generator)) for limit in (h, w))
            pixels, truth = self._tile(entry, top, left, t)
            tiles.append(pixels)
            labels.append(truth)
        return torch.stack(tiles).float().div_(255.0), torch.stack(labels)


def balanced_rows(labels: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into ``labels.flatten()`` of up to ``n // 2`` anomalous and as many normal patch
    centres (all normal, ``n`` of them, when there is no anomalous one), and their labels as floats.

    Anomalous first, then normal; each drawn uniformly without replacement.
    """
    flat = labels.flatten()
    positives = flat.nonzero()[:, 0]
    negatives = (~flat).nonzero()[:, 0]
    k = min(len(positives), n // 2)
    if k == 0:
        k_neg = min(n, len(negatives))
    else:
        k_neg = min(k, len(negatives))
    pick_pos = positives[torch.randperm(len(positives), generator=generator)[:k]]
    pick_neg = negatives[torch.randperm(len(negatives), generator=generator)[:k_neg]]
    rows = torch.cat([pick_pos, pick_neg])
    return rows, torch.cat([torch.ones(len(pick_pos)), torch.zeros(len(pick_neg))])

"""SMAI's parts (Li et al., "Superpixel Masking and Inpainting for Self-Supervised
Anomaly Detection"): SLIC superpixels (section 3.2), holes from chosen
superpixels, and the test-time schedule of masking passes (section 3.3).

The inpainting network is :class:`ml.components.inpainting.InpaintingUNet`
with PEN-Net's attention transfer (section 3.1); its input is the masked
image and the hole mask, ``(N, 4, S, S)``.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import slic

from ml.components.inpainting import InpaintingUNet


def superpixels(images: torch.Tensor, n_segments: int, compactness: float) -> torch.Tensor:
    """(N, 3, S, S) in [0, 1] -> (N, S, S) int32 SLIC labels 0 .. m-1 per image."""
    out = []
    for image in images.detach().cpu().permute(0, 2, 3, 1).numpy():
        labels = slic(image.astype(np.float64), n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
        out.append(torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int32)))
    return torch.stack(out)


def neighbours(labels: torch.Tensor) -> dict[int, set[int]]:
    """Superpixels touching each superpixel (4-connectivity) of one (S, S) label map."""
    pairs = torch.cat(
        [
            torch.stack([labels[:, :-1].flatten(), labels[:, 1:].flatten()], dim=1),
            torch.stack([labels[:-1, :].flatten(), labels[1:, :].flatten()], dim=1),
        ]
    )
    pairs = torch.unique(pairs[pairs[:, 0] != pairs[:, 1]], dim=0).tolist()
    graph: dict[int, set[int]] = {int(v): set() for v in torch.unique(labels).tolist()}
    for a, b in pairs:
        graph[a].add(b)
        graph[b].add(a)
    return graph


def masking_passes(labels: torch.Tensor, per_pass: int) -> list[list[int]]:
    """Which superpixels each test-time pass masks: every superpixel exactly once, at most
    ``per_pass`` per pass, never two neighbours together (greedy colouring, largest degree first).
    ``per_pass = 1`` is the paper's one by one."""
    graph = neighbours(labels)
    if per_pass == 1:
        return [[v] for v in sorted(graph)]
    colour: dict[int, int] = {}
    for v in sorted(graph, key=lambda v: (-len(graph[v]), v)):
        taken = {colour[u] for u in graph[v] if u in colour}
        colour[v] = next(c for c in range(len(graph) + 1) if c not in taken)
    passes = []
    for c in sorted(set(colour.values())):
        members = sorted(v for v, cv in colour.items() if cv == c)
        passes += [members[i : i + per_pass] for i in range(0, len(members), per_pass)]
    return passes


def holes(labels: torch.Tensor, chosen: list[list[int]]) -> torch.Tensor:
    """(S, S) labels and P lists of superpixels -> (P, 1, S, S) float holes (1 = masked)."""
    table = torch.zeros(len(chosen), int(labels.max()) + 1, dtype=torch.bool)
    for p, members in enumerate(chosen):
        table[p, members] = True
    return table[:, labels.long()].unsqueeze(1).float()


def masked_input(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) images and (N, 1, S, S) holes -> (N, 4, S, S): the image with the holes blanked, and the hole."""
    return torch.cat([x * (1 - hole), hole], dim=1)


class SMAIModel(InpaintingUNet):
    def __init__(self, base_channels: int = 16):
        super().__init__(in_channels=4, base_channels=base_channels, attention=True)

    def inpaint(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) images, (N, 1, S, S) holes -> (N, 3, S, S) restorations."""
        return self(masked_input(x, hole), hole)

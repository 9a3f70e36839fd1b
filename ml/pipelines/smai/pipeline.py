"""SMAI pipeline: superpixels once per image, training on k random masked superpixels
with the SSIM objective (eq. 1), and test-time restoration of every superpixel, in
passes that are batched across superpixels and images (eq. 2-3). Image score = the map's maximum."""
from __future__ import annotations

import torch

from ml.components.reconstruction import ReconstructionPipeline
from ml.components.ssim import ssim_loss
from ml.pipelines.smai.anomaly_map import region_error
from ml.pipelines.smai.config import DESCRIPTION, SMAIConfig
from ml.pipelines.smai.torch_model import SMAIModel, holes, masking_passes, superpixels
from ml.registry import register


def random_holes(labels: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """(B, S, S) labels -> (B, 1, S, S): k superpixels of each image chosen at random (section 3.2)."""
    out = []
    for image_labels in labels.cpu():
        count = int(image_labels.max()) + 1
        chosen = torch.randperm(count, generator=generator)[: min(k, count - 1)].tolist()
        out.append(holes(image_labels, [chosen]))
    return torch.cat(out).to(labels.device)


@register
class SMAIPipeline(ReconstructionPipeline):
    name = "smai"
    config_class = SMAIConfig
    description = DESCRIPTION

    def build_model(self) -> SMAIModel:
        return SMAIModel(self.config.base_channels)

    def auxiliary(self, images: torch.Tensor) -> torch.Tensor:
        return superpixels(images, self.config.n_segments, self.config.compactness)

    def loss(self, x, aux, generator) -> torch.Tensor:
        # Eq. 1: the restoration of the masked image should be structurally similar to the image.
        hole = random_holes(aux, self.config.masked_superpixels, generator).to(x.dtype)
        return ssim_loss(x, self.model.inpaint(x, hole))

    def anomaly_maps(self, x, aux):
        """Eq. 2-3 with every pass of every image in one queue, ``inference_batch`` copies per forward."""
        cfg: SMAIConfig = self.config
        owners, hole_list = [], []
        for i, labels in enumerate(aux.cpu()):
            h = holes(labels, masking_passes(labels, cfg.superpixels_per_pass))
            hole_list.append(h)
            owners += [i] * len(h)
        all_holes = torch.cat(hole_list).to(x.device, x.dtype)
        owners_t = torch.tensor(owners, device=x.device)
        maps = torch.zeros(x.shape[0], *x.shape[-2:], device=x.device, dtype=x.dtype)
        for start in range(0, len(owners), cfg.inference_batch):
            idx = owners_t[start : start + cfg.inference_batch]
            hole = all_holes[start : start + cfg.inference_batch]
            images = x[idx]
            error = region_error(images, self.model.inpaint(images, hole), hole, cfg.anomaly_map)
            maps.index_add_(0, idx, error)
        return maps, maps.flatten(1).amax(dim=1)

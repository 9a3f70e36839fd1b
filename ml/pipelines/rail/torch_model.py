"""Networks of the rail pipeline: the rail segmenter (stage 1) and the patch autoencoder (stage 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ml.components.unet import PretrainedEncoderUNet, UNet


class RailSegmenter(nn.Module):
    """U-Net for rail vs background (section III-A): ``(N, 3, H, W)`` normalised -> ``(N, 1, H, W)`` logits.

    ``encoder``: ``efficientnet_lite0`` (ImageNet-pretrained, offline; the paper's transfer learning
    with VGG / ResNet-50 encoders) or ``plain`` (the U-Net encoder trained from scratch).
    """

    def __init__(self, encoder: str = "efficientnet_lite0", base_channels: int = 16, pretrained: bool = True):
        super().__init__()
        self.encoder = encoder
        if encoder == "plain":
            self.unet = UNet(in_channels=3, out_channels=1, base_channels=base_channels)
        else:
            self.unet = PretrainedEncoderUNet(in_channels=3, out_channels=1, base_channels=base_channels, pretrained=pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)


class PatchAutoencoder(nn.Module):
    """The paper's autoencoder (section III-C, Fig. 1): ``(N, 3, P, P)`` patches in [0, 1] ->
    reconstructions of the same shape.

    Encoder: Conv2D with ``conv_channels`` (64) filters 3x3 -> flatten -> ReLU -> batch norm ->
    dense ``hidden`` (256) -> ReLU -> batch norm -> dense ``latent`` (128) -> ReLU -> batch norm (the
    code). Decoder: the same layers in reverse order, ending in a 3x3 convolution back to 3
    channels with a sigmoid (patches are in [0, 1]).
    """

    def __init__(self, patch: int = 16, conv_channels: int = 64, hidden: int = 256, latent: int = 128):
        super().__init__()
        self.patch = patch
        flat = conv_channels * patch * patch
        self.encoder = nn.Sequential(
            nn.Conv2d(3, conv_channels, 3, padding=1),
            nn.Flatten(),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(flat),
            nn.Linear(flat, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Linear(hidden, latent),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Linear(hidden, flat),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(flat),
            nn.Unflatten(1, (conv_channels, patch, patch)),
            nn.Conv2d(conv_channels, 3, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (3, self.patch, self.patch):
            raise ValueError(f"expected patches (N, 3, {self.patch}, {self.patch}), got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))


def reconstruction_error(patches: torch.Tensor, reconstructions: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Eq. 4: ``L_r(I, I') = sqrt(sum_xy (I(x, y) - I'(x, y))^2)`` per patch (summed over channels too): (N,).

    ``pool`` > 1 first averages the residual ``I - I'`` over ``pool`` x ``pool`` cells: the error then
    measures what the autoencoder gets wrong at that scale (a colour or a shape no normal patch has)
    and no longer the fine ballast grain that it cannot rebuild on any patch. ``pool`` 1 is eq. 4."""
    residual = patches.float() - reconstructions.float()
    if pool > 1:
        residual = F.avg_pool2d(residual, pool)
    return residual.pow(2).flatten(1).sum(dim=1).sqrt()


def silence_dead_units(model: nn.Module, tolerance: float = 1e-4) -> dict[str, int]:
    """Set to zero the scale of every batch-norm unit whose running variance is below ``tolerance``
    times its layer's median: units (ReLU outputs that never fired, or nearly never) that were constant
    on the training patches. Training only ever saw them at their mean, which batch norm maps to its
    shift; at inference a patch unlike the training ones can wake one up, and dividing by a variance of
    about 0 then multiplies it by hundreds (measured: 500 against under 7 on normal patches) and the
    decoder's output breaks down into noise. With a zero scale the unit gives its shift, as it did in
    training. Returns the silenced units per layer name (layers with none left out)."""
    silenced = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None and module.affine:
                dead = module.running_var < tolerance * module.running_var.median()
                if dead.any():
                    module.weight[dead] = 0.0
                    silenced[name] = int(dead.sum())
    return silenced

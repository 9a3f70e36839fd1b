"""The two networks of the unsupervised two-stage method (thesis 4.2.1, after Liu et al.).

Impression extractor (IE-Net, figures 4.7-4.10):
- :class:`InceptionBlock`: parallel 1x1, 3x3 and 5x5 convolutions and a 3x3
  max pool followed by a 1x1 convolution, each with batch norm and
  LeakyReLU(0.1), sizes kept, concatenated (figure 4.9).
- encoder E_M: inception blocks and 2x2 max pooling (three times, stride 8);
  decoder D_M: inception blocks and nearest-neighbour upsampling, then a 3x3
  convolution with reflect padding 1, a 1x1 convolution to RGB and a sigmoid.
- a fully connected head estimating the mean and standard deviation of the
  feature map (per channel, from its global average), used by the KL term
  (eq. 4.7) and to sample feature maps for the discriminator.
- discriminator T (figure 4.10): an image branch (2x2 average pooling, five
  4x4 stride-2 convolutions, batch norm + ReLU but the last) and the feature
  map, merged and judged by four linear layers (batch norm + ReLU, sigmoid last).

Style-transfer network (Expert-Net, figures 4.15-4.17):
- content encoders: 7x7 convolution, two 4x4 stride-2 convolutions, a residual
  block; instance norm + ReLU (the block's last convolution has no activation);
- decoders: a residual block with AdaIN (eq. 4.13), two x2 upsampling + 5x5
  convolution with layer norm + ReLU (each upsampling and convolution computed
  at the coarse resolution, :func:`ml.components.upsampling.upsample_conv`),
  a 7x7 convolution and a sigmoid;
- style encoder: 7x7 convolution, four 4x4 stride-2 convolutions, global
  average pooling, a 1x1 convolution to the style vector; an MLP of three
  linear layers turns a style vector into the AdaIN means and deviations
  (eq. 4.12).
Images are (N, 3, S, S) in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.components.upsampling import run_sequential


# --- impression extractor -------------------------------------------------------------------
class InceptionBlock(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H, W); C_out divisible by 4 (four branches of C_out / 4)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"out_channels must be divisible by 4, got {out_channels}")
        q = out_channels // 4

        def branch(*layers: nn.Module) -> nn.Sequential:
            return nn.Sequential(*layers, nn.BatchNorm2d(q), nn.LeakyReLU(0.1, inplace=True))

        self.branches = nn.ModuleList(
            [
                branch(nn.Conv2d(in_channels, q, 1)),
                branch(nn.Conv2d(in_channels, q, 3, padding=1)),
                branch(nn.Conv2d(in_channels, q, 5, padding=2)),
                branch(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(in_channels, q, 1)),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class ImpressionExtractor(nn.Module):
    def __init__(self, image_size: int, base: int = 16):
        super().__init__()
        b = base
        self.encoder = nn.Sequential(
            InceptionBlock(3, b), nn.MaxPool2d(2),
            InceptionBlock(b, 2 * b), nn.MaxPool2d(2),
            InceptionBlock(2 * b, 4 * b), nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            InceptionBlock(4 * b, 2 * b), nn.Upsample(scale_factor=2, mode="nearest"),
            InceptionBlock(2 * b, b), nn.Upsample(scale_factor=2, mode="nearest"),
            InceptionBlock(b, b), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1), nn.Conv2d(b, b, 3), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(b, 3, 1), nn.Sigmoid(),
        )
        channels = 4 * b
        self.distribution = nn.Sequential(nn.Linear(channels, 2 * channels), nn.ReLU(inplace=True), nn.Linear(2 * channels, 2 * channels))
        self.discriminator = FeatureDiscriminator(image_size, channels, b)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> the impression (N, 3, S, S)."""
        return self.decoder(self.encoder(x))

    def feature_distribution(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, h, w) feature map -> per-channel (mean (N, C), log-variance (N, C))."""
        mean, log_var = self.distribution(features.mean(dim=(2, 3))).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 10)


class FeatureDiscriminator(nn.Module):
    """T(x, z): does feature map z (N, C, S/8, S/8) belong to image x (N, 3, S, S)? -> (N,) probability."""

    def __init__(self, image_size: int, feature_channels: int, base: int):
        super().__init__()
        layers: list[nn.Module] = [nn.AvgPool2d(2)]
        channels = 3
        widths = [base, 2 * base, 4 * base, 4 * base, 4 * base]
        for i, width in enumerate(widths):
            layers.append(nn.Conv2d(channels, width, 4, 2, 1))
            if i < len(widths) - 1:
                layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.image_branch = nn.Sequential(*layers)
        self.side = image_size // 64
        merged = (channels + feature_channels) * self.side**2
        hidden = [merged, 256, 128, 64]
        head: list[nn.Module] = []
        for a, c in zip(hidden[:-1], hidden[1:]):
            head += [nn.Linear(a, c), nn.BatchNorm1d(c), nn.ReLU(inplace=True)]
        head += [nn.Linear(hidden[-1], 1), nn.Sigmoid()]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        image = self.image_branch(x)
        features = F.adaptive_avg_pool2d(features, image.shape[-2:])
        return self.head(torch.cat([image, features], dim=1).flatten(1)).flatten()


# --- style transfer --------------------------------------------------------------------------
def spatial_var_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample and channel (biased) variance and mean of (N, C, H, W) -> two (N, C, 1, 1).
    A channels-last map is reduced as (N, H*W, C) rows: reducing its H and W axes directly
    runs strided and was the slowest step of the style-transfer network on CPU."""
    if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
        var, mean = _var_mean(x.permute(0, 2, 3, 1).flatten(1, 2), dim=1)  # (N, 1, C)
        return var.transpose(1, 2)[..., None], mean.transpose(1, 2)[..., None]
    return _var_mean(x, dim=(2, 3))


def _var_mean(x: torch.Tensor, dim) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased variance and mean over ``dim`` (kept), by the two-pass formula: on CPU about 6x
    faster than ``torch.var_mean`` for these shapes, and as accurate."""
    mean = x.mean(dim, keepdim=True)
    return (x - mean).square_().mean(dim, keepdim=True), mean


def adain(k: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 4.13: gamma * (k - mean(k)) / std(k) + beta, statistics per sample and channel.
    ``k`` (N, C, H, W); ``gamma``, ``beta`` (N, C)."""
    var, mean = spatial_var_mean(k)
    # As one scale and shift per sample and channel: a single pass over k.
    scale = gamma[:, :, None, None] * torch.rsqrt(var + eps)
    return torch.addcmul(beta[:, :, None, None] - mean * scale, k, scale)


class InstanceNorm(nn.Module):
    """Instance normalisation without affine parameters (as ``nn.InstanceNorm2d()``, which has
    no saved state either), computed as one scale and shift: it keeps channels-last maps
    channels-last, where the built-in one copies them."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = spatial_var_mean(x)
        scale = torch.rsqrt(var + self.eps)
        return torch.addcmul(-mean * scale, x, scale)


class LayerNorm(nn.Module):
    """Normalisation over (C, H, W) per sample with a per-channel affine (the decoders' layer norm)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Over all of a sample's values, read in memory order (a view, whatever the layout).
        flat = x.permute(0, 2, 3, 1) if x.is_contiguous(memory_format=torch.channels_last) else x
        var, mean = _var_mean(flat.reshape(x.shape[0], -1), dim=1)
        var, mean = var[:, :, None, None], mean[:, :, None, None]
        scale = self.weight[None, :, None, None] * torch.rsqrt(var + self.eps)  # (N, C, 1, 1)
        return torch.addcmul(self.bias[None, :, None, None] - mean * scale, x, scale)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm (ReLU after the first), added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), InstanceNorm(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), InstanceNorm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaINResidualBlock(nn.Module):
    """Two 3x3 convolutions each followed by AdaIN (ReLU after the first), added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.channels = channels

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``params`` (N, 4C): gamma and beta of both AdaIN layers."""
        g1, b1, g2, b2 = params.split(self.channels, dim=1)
        h = F.relu(adain(self.conv1(x), g1, b1))
        return x + adain(self.conv2(h), g2, b2)


class ContentEncoder(nn.Module):
    def __init__(self, base: int):
        super().__init__()
        b = base
        self.net = nn.Sequential(
            nn.Conv2d(3, b, 7, 1, 3), InstanceNorm(b), nn.ReLU(inplace=True),
            nn.Conv2d(b, 2 * b, 4, 2, 1), InstanceNorm(2 * b), nn.ReLU(inplace=True),
            nn.Conv2d(2 * b, 4 * b, 4, 2, 1), InstanceNorm(4 * b), nn.ReLU(inplace=True),
            ResidualBlock(4 * b),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StyleDecoder(nn.Module):
    """Content (N, 4b, S/4, S/4) and style (N, style_dim) -> image (N, 3, S, S)."""

    def __init__(self, base: int, style_dim: int):
        super().__init__()
        b = base
        self.residual = AdaINResidualBlock(4 * b)
        self.mlp = nn.Sequential(
            nn.Linear(style_dim, 64), nn.ReLU(inplace=True), nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, 4 * 4 * b)
        )
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * b, 2 * b, 5, 1, 2), LayerNorm(2 * b), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * b, b, 5, 1, 2), LayerNorm(b), nn.ReLU(inplace=True),
            nn.Conv2d(b, 3, 7, 1, 3), nn.Sigmoid(),
        )

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        params = self.mlp(style)
        channels = self.residual.channels
        # The MLP's output is [means..., deviations...] (eq. 4.12); deviations start around 1.
        g1, g2 = 1 + params[:, :channels], 1 + params[:, 2 * channels : 3 * channels]
        b1, b2 = params[:, channels : 2 * channels], params[:, 3 * channels :]
        # The x2 upsamplings and the 5x5 convolutions after them run at the coarse resolution.
        return run_sequential(self.up, self.residual(content, torch.cat([g1, b1, g2, b2], dim=1)))


class StyleEncoder(nn.Module):
    def __init__(self, base: int, style_dim: int):
        super().__init__()
        b = base
        layers: list[nn.Module] = [nn.Conv2d(3, b, 7, 1, 3), nn.ReLU(inplace=True)]
        channels = b
        for _ in range(4):
            width = min(4 * b, 2 * channels)
            layers += [nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(inplace=True)]
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class StyleTransfer(nn.Module):
    """Expert-Net: impression -> image with the image's style, image -> impression with a random style."""

    style_dim = 8

    def __init__(self, base: int = 16):
        super().__init__()
        self.encode_image = ContentEncoder(base)
        self.encode_impression = ContentEncoder(base)
        self.decode_image = StyleDecoder(base, self.style_dim)
        self.decode_impression = StyleDecoder(base, self.style_dim)
        self.style = StyleEncoder(base, self.style_dim)

    def forward(self, x: torch.Tensor, m: torch.Tensor, random_style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x^ the image rebuilt from its impression, m^ the impression rebuilt from the image, s the style of x)."""
        s = self.style(x)
        x_hat = self.decode_image(self.encode_impression(m), s)
        m_hat = self.decode_impression(self.encode_image(x), random_style)
        return x_hat, m_hat, s


class UTADModel(nn.Module):
    def __init__(self, image_size: int = 256, base: int = 16):
        super().__init__()
        self.impression = ImpressionExtractor(image_size, base)
        self.style_transfer = StyleTransfer(base)

"""The multi-level patch anomaly detector of thesis section 4.1.2 (figures 4.3-4.6).

Patch formulation (training): a 33x33 patch -> encoder of four residual
*fundamental blocks*, a *squeeze-excitation block* and linear layers to the
mean and (log-)variance of a latent Gaussian; an *aggregation block* turns the
feature maps of three encoder levels into vectors (1x1 conv + ReLU, adaptive
average pooling); a five-layer classifier reads ``[mu, logvar, v1, v2, v3]``
and says whether the centre pixel is anomalous; a decoder (two linear + four
3x3 convs with bilinear upsampling, sigmoid) reconstructs the patch from a
sampled latent, as a regulariser.

Dense formulation (inference), equal to the patch formulation for every pixel:

- every conv of the encoder is stride 1, so its output at a pixel depends only
  on the 17x17 neighbourhood (8 conv layers of 3x3: radius 8). A training
  patch is therefore cut with 8 pixels of context on each side (49x49), run
  through the blocks, and the centre 33x33 of each feature map is kept: those
  values are exactly the values of the same pixels when the blocks run once
  over the whole (reflection-padded) image;
- the only operations over a patch are averages (the adaptive average pooling
  of the SE and aggregation blocks, and the pooling of the SE-weighted map to
  a g x g grid of 11x11 cells before the linear layers). The average of a map
  over a window at every pixel is a box filter, computed once per image with
  running sums (:func:`box_mean`); the cells of every pixel's window are the
  same box means read at offsets of 11 pixels;
- the SE re-weighting commutes with the average (``mean(s * f) = s * mean(f)``
  for per-channel weights ``s``), and every linear layer, batch norm (in eval
  mode) and the classifier act on each pixel's vector independently, so they
  run as one matrix product over all pixels.

So the encoder runs once per image and the 65,536 "patches" of a 256x256 image
cost one dense pass plus per-pixel matrix products. The one choice the thesis
leaves open and this module fixes is how the encoder's 33x33xC map becomes the
input of its two linear layers: here by average pooling to a 3x3 grid of 11x11
cells, flattened (``pool_grid``; 1 pools the whole patch). Flattening the full
map would need a 33x33 convolution per pixel; pooling the whole patch to one
vector makes every pixel's vector a 33x33 box blur of its neighbours', which
cannot place a thin crack within its window: the centre cell keeps where.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.components.variational import ConvDecoder, reparameterize

PATCH = 33  # thesis section 4.1.2: fixed patch size; other sizes are simulated by rescaling the image
CONTEXT = 8  # receptive radius of the eight 3x3 convs of the four fundamental blocks
CROP = PATCH + 2 * CONTEXT  # 49: what a training patch is cut with
PAD = PATCH // 2 + CONTEXT  # 24: reflection padding that gives every image pixel a patch


class FundamentalBlock(nn.Module):
    """Two 3x3 convs (stride 1, padding 1) with batch norm + ReLU, plus the block's input (figure 4.4).

    (N, C_in, H, W) -> (N, C_out, H, W). When the channel count changes, a 1x1
    conv brings the input to ``C_out`` before the addition.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class SqueezeExcitation(nn.Module):
    """Adaptive average pooling, then linear + ReLU and linear + sigmoid: one weight per channel (figure 4.4).

    ``forward(x)``: (N, C, H, W) -> the re-weighted map. ``weights(pooled)``:
    (B, C) channel means -> (B, C) weights in (0, 1), so the dense path can feed
    it every pixel's window mean at once.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid())

    def weights(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x.mean(dim=(2, 3)))[:, :, None, None]


class AggregationBlock(nn.Module):
    """Feature maps of three encoder levels -> three vectors of one size (figure 4.6).

    Each level: a 1x1 conv to ``out_channels`` with ReLU, then adaptive average
    pooling. ``forward(levels)`` -> (N, 3 * out_channels); ``dense(levels)`` ->
    the per-pixel maps before pooling, (N, 3 * out_channels, H, W).
    """

    def __init__(self, in_channels: tuple[int, ...], out_channels: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Sequential(nn.Conv2d(c, out_channels, 1), nn.ReLU(inplace=True)) for c in in_channels)

    def dense(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([conv(f) for conv, f in zip(self.convs, levels)], dim=1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return self.dense(levels).mean(dim=(2, 3))


def mlp(sizes: list[int], last_plain: bool) -> nn.Sequential:
    """Linear layers with batch norm + ReLU; the last one plain when ``last_plain``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if not (last_plain and i == len(sizes) - 2):
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def fold_batch_norms(seq: nn.Sequential) -> nn.Sequential:
    """An eval-mode copy of an :func:`mlp` with each BatchNorm1d folded into the Linear before it:
    the same function in inference (up to float rounding) with one pass over the activations
    less per layer, which matters when the heads run for every pixel of an image."""
    from torch.nn.utils.fusion import fuse_linear_bn_eval

    layers, out, i = list(seq), [], 0
    while i < len(layers):
        if isinstance(layers[i], nn.Linear) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm1d):
            out.append(fuse_linear_bn_eval(layers[i], layers[i + 1]))
            i += 2
        else:
            out.append(layers[i])
            i += 1
    return nn.Sequential(*out)


def pad_for_patches(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad (N, C, H, W) by ``PAD`` on each side, so every pixel is a patch centre
    (in steps when the image is smaller than the padding)."""
    remaining = PAD
    while remaining > 0:
        step = min(remaining, x.shape[-1] - 1, x.shape[-2] - 1)
        x = F.pad(x, (step,) * 4, mode="reflect")
        remaining -= step
    return x


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over every ``size`` x ``size`` window (stride 1, no padding) of (N, C, H, W) ->
    (N, C, H - size + 1, W - size + 1): separable running sums (each cumulative sum spans one
    row or column only, so float32 stays accurate to ~1e-6 of the values)."""
    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        c = F.pad(t.cumsum(dim), (1, 0) if dim == 3 else (0, 0, 1, 0))
        n = c.shape[dim]
        return c.narrow(dim, size, n - size) - c.narrow(dim, 0, n - size)

    return along(along(x, 2), 3) / (size * size)


class MultiLevelPatchModel(nn.Module):
    """Encoder, aggregation block, classifier and decoder of figure 4.3.

    ``channels``: outputs of the four fundamental blocks; levels 1-3 feed the
    aggregation block, level 4 the SE block and the latent heads.
    """

    def __init__(
        self, channels: tuple[int, int, int, int] = (16, 16, 32, 32), latent_dim: int = 64, aggregation_channels: int = 32,
        hidden: int = 128, pool_grid: int = 3,
    ):
        super().__init__()
        if PATCH % pool_grid:
            raise ValueError(f"pool_grid must divide the patch size {PATCH} (1, 3 or 11), got {pool_grid}")
        self.pool_grid = pool_grid
        self.channels4 = channels[3]
        blocks, cin = [], 3
        for cout in channels:
            blocks.append(FundamentalBlock(cin, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.se = SqueezeExcitation(channels[3])
        self.to_latent = mlp([channels[3] * pool_grid**2, hidden, hidden], last_plain=False)  # "two linear layers, BN + ReLU"
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.aggregation = AggregationBlock(tuple(channels[:3]), aggregation_channels)
        width = 2 * latent_dim + 3 * aggregation_channels
        # Five linear layers, BN + ReLU except the last (its sigmoid is applied with the loss / at inference).
        self.classifier = mlp([width, 128, 64, 32, 16, 1], last_plain=True)
        self.decoder = ConvDecoder(latent_dim, PATCH, 3, channels=(32, 32, 16, 16), hidden=hidden)

    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = []
        for block in self.blocks:
            x = block(x)
            levels.append(x)
        return levels

    def _heads(self, pooled4: torch.Tensor, aggregated: torch.Tensor, folded: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C4 * g * g) level-4 cell means (channel-major, g x g cells of the patch) and (B, 3A)
        aggregated vectors -> logit (B,), mu, logvar (B, M). The SE block squeezes the whole patch
        (the mean of its equal cells) and re-weights every cell's channels."""
        cells = pooled4.view(pooled4.shape[0], self.channels4, -1)
        weights = self.se.weights(cells.mean(dim=2))
        to_latent, classifier = (fold_batch_norms(self.to_latent), fold_batch_norms(self.classifier)) if folded else (self.to_latent, self.classifier)
        h = to_latent((cells * weights[:, :, None]).flatten(1))
        mu, logvar = self.mu(h), self.logvar(h)
        logit = classifier(torch.cat([mu, logvar, aggregated], dim=1))[:, 0]
        return logit, mu, logvar

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patch formulation. ``crops``: (B, 3, 49, 49) in [0, 1], a 33x33 patch with 8 px of context.

        Returns the centre pixel's anomaly logit (B,), the patch reconstruction
        (B, 3, 33, 33), mu and logvar (B, M).
        """
        if crops.dim() != 4 or crops.shape[1:] != (3, CROP, CROP):
            raise ValueError(f"expected (B, 3, {CROP}, {CROP}) patches with context, got {tuple(crops.shape)}")
        inner = slice(CONTEXT, CONTEXT + PATCH)
        levels = [f[:, :, inner, inner] for f in self._levels(crops)]
        aggregated = self.aggregation(levels[:3])
        grid = F.adaptive_avg_pool2d(levels[3], self.pool_grid).flatten(1)
        logit, mu, logvar = self._heads(grid, aggregated)
        reconstruction = self.decoder(reparameterize(mu, logvar) if self.training else mu)
        return logit, reconstruction, mu, logvar

    def dense_features(self, padded: torch.Tensor, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, int]]:
        """The per-patch vectors of every pixel at once. ``padded``: (N, 3, H + 48, W + 48), the
        image reflection-padded by 24 (:func:`pad_for_patches`).

        Returns the window means of level 4 (N*h*w, C4), the aggregated level
        vectors (N*h*w, 3A) and (N, h, w), with h = ceil(H / stride): the
        inputs of :meth:`_heads` for the patch centred at every ``stride``-th pixel.
        """
        n, _, hp, wp = padded.shape
        if hp - 2 * PAD < 1 or wp - 2 * PAD < 1:
            raise ValueError(f"expected an image padded by {PAD} on each side, got {tuple(padded.shape)}")
        inner = (slice(None), slice(None), slice(CONTEXT, hp - CONTEXT), slice(CONTEXT, wp - CONTEXT))
        levels = [f[inner] for f in self._levels(padded)]
        aggregated = box_mean(self.aggregation.dense(levels[:3]), PATCH)[:, :, ::stride, ::stride]
        pooled4 = self._dense_cells(levels[3], hp - 2 * PAD, wp - 2 * PAD)[:, :, ::stride, ::stride]
        h, w = pooled4.shape[-2:]

        def rows(t: torch.Tensor) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(n * h * w, t.shape[1])

        return rows(pooled4), rows(aggregated), (n, h, w)

    def _dense_cells(self, level4: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(N, C, H + 32, W + 32) level-4 map -> (N, C * g * g, H, W): for every pixel, the means of
        the g x g cells of its 33x33 window (channel-major, like flattening adaptive_avg_pool2d)."""
        g = self.pool_grid
        cell = PATCH // g
        means = box_mean(level4, cell)  # mean of the cell starting at each position
        n, c = level4.shape[:2]
        cells = [means[:, :, a * cell : a * cell + height, b * cell : b * cell + width] for a in range(g) for b in range(g)]
        return torch.stack(cells, dim=2).reshape(n, c * g * g, height, width)

    def dense_logits(self, padded: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """Dense formulation: (N, 3, H + 48, W + 48) padded images -> (N, H, W) logits of the patch
        centred at every pixel, equal to :meth:`forward` on that pixel's 49x49 crop (in eval mode);
        with ``stride`` s > 1 only every s-th pixel's, (N, ceil(H/s), ceil(W/s))."""
        pooled4, aggregated, shape = self.dense_features(padded, stride)
        # Per pixel, the heads are most of the work: in eval mode their batch norms are folded in.
        logit, _, _ = self._heads(pooled4, aggregated, folded=not self.training)
        return logit.view(*shape)

    def tile_forward(self, padded_tiles: torch.Tensor, rows: torch.Tensor, decode: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training on tiles: the dense pass over (B, 3, T + 48, T + 48) tiles, then the heads for the
        chosen patch centres ``rows`` (indices into the B*T*T centres, row-major) and the decoder for
        the first ``decode`` of them. Returns logits (K,), reconstructions (decode, 3, 33, 33), mu, logvar (K, M).

        Sharing the encoder between the patches of a tile is exact for the
        convolutions and poolings (see the module docstring); only the batch
        statistics of the conv layers' batch norm are taken over tile pixels
        instead of over separate patches.
        """
        pooled4, aggregated, _ = self.dense_features(padded_tiles)
        logit, mu, logvar = self._heads(pooled4[rows], aggregated[rows])
        reconstruction = self.decoder(reparameterize(mu[:decode], logvar[:decode]))
        return logit, reconstruction, mu, logvar

"""The multi-level patch model (thesis 4.1.2): its blocks, the balanced multi-scale
sampler, and the dense inference that must equal one pass per 33x33 patch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ml.pipelines.multilevel.sampler import BalancedPatchSampler, balanced_rows
from ml.pipelines.multilevel.torch_model import (
    CROP, PAD, PATCH, AggregationBlock, FundamentalBlock, MultiLevelPatchModel, SqueezeExcitation, box_mean,
)


def test_fundamental_block_adds_its_input_to_the_two_convs():
    block = FundamentalBlock(4, 4).eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        block.body[4].weight.zero_()  # last batch norm -> 0, ReLU(0) = 0: only the skip remains
        block.body[4].bias.zero_()
        assert torch.equal(block(x), x)
        widened = FundamentalBlock(3, 8).eval()
        assert widened(torch.randn(1, 3, 9, 9)).shape == (1, 8, 9, 9)


def test_squeeze_excitation_weights_channels_by_their_pooled_activity():
    se = SqueezeExcitation(6).eval()
    x = torch.rand(2, 6, 5, 5)
    with torch.no_grad():
        weights = se.weights(x.mean(dim=(2, 3)))
        assert weights.shape == (2, 6) and float(weights.min()) > 0 and float(weights.max()) < 1
        torch.testing.assert_close(se(x), x * weights[:, :, None, None])
        se.fc[2].bias.fill_(50.0)  # saturated sigmoid: every channel kept whole
        torch.testing.assert_close(se(x), x)


def test_aggregation_block_gives_three_vectors_of_one_size_from_levels_of_different_widths():
    agg = AggregationBlock((4, 8, 16), 5)
    levels = [torch.rand(2, c, 7, 7) for c in (4, 8, 16)]
    with torch.no_grad():
        out = agg(levels)
        assert out.shape == (2, 15)
        torch.testing.assert_close(out, agg.dense(levels).mean(dim=(2, 3)))
        assert float(out.min()) >= 0  # ReLU before pooling


def test_box_mean_is_the_average_over_every_window():
    x = torch.rand(1, 3, 50, 41)
    torch.testing.assert_close(box_mean(x, PATCH), F.avg_pool2d(x, PATCH, stride=1), atol=1e-5, rtol=0)


def test_tile_training_pass_classifies_the_chosen_centres_like_the_dense_pass():
    torch.manual_seed(1)
    model = MultiLevelPatchModel(channels=(4, 4, 8, 8), latent_dim=8, aggregation_channels=4, hidden=16).eval()
    tiles = torch.rand(2, 3, 6 + 2 * PAD, 6 + 2 * PAD)
    rows = torch.tensor([0, 7, 40, 71])
    with torch.no_grad():
        logits, reconstruction, mu, _ = model.tile_forward(tiles, rows, decode=2)
        dense = model.dense_logits(tiles).flatten()
    torch.testing.assert_close(logits, dense[rows])
    assert reconstruction.shape == (2, 3, PATCH, PATCH) and mu.shape == (4, 8)


def test_dense_inference_equals_one_pass_per_patch():
    torch.manual_seed(0)
    model = MultiLevelPatchModel(channels=(4, 4, 8, 8), latent_dim=8, aggregation_channels=4, hidden=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # non-trivial batch-norm statistics
        logits, reconstruction, mu, _ = model(torch.rand(8, 3, CROP, CROP))
        optimizer.zero_grad()
        (logits.sum() + reconstruction.sum() + mu.sum()).backward()
        optimizer.step()
    model.eval()
    image = torch.rand(1, 3, 40, 36)
    padded = F.pad(image, (PAD,) * 4, mode="reflect")
    pixels = [(0, 0), (39, 35), (17, 3), (20, 20)]
    with torch.no_grad():
        dense = model.dense_logits(padded)
        # The patch of pixel (y, x) with its context is the padded image's crop starting at (y, x).
        crops = torch.stack([padded[0, :, y : y + CROP, x : x + CROP] for y, x in pixels])
        per_patch = model(crops)[0]
        strided = model.dense_logits(padded, stride=2)
    assert dense.shape == (1, 40, 36)
    torch.testing.assert_close(dense[0, [p[0] for p in pixels], [p[1] for p in pixels]], per_patch, atol=1e-4, rtol=1e-4)
    assert strided.shape == (1, 20, 18)
    torch.testing.assert_close(strided[0], dense[0, ::2, ::2])


def _gradient_image(size: int) -> np.ndarray:
    """Pixel values that encode their own position, so a crop's centre can be checked."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([y * 255 // (size - 1), x * 255 // (size - 1), np.full_like(y, 128)], axis=-1).astype(np.uint8)


def test_sampler_tiles_carry_the_labels_of_their_patch_centres_and_half_cover_an_anomaly():
    size = 40
    image = _gradient_image(size)
    mask = np.zeros((size, size), bool)
    mask[10:14, 20:24] = True  # 16 anomalous pixels of 1600
    sampler = BalancedPatchSampler([image, image], [mask, np.zeros_like(mask)], size, [1.0])
    tiles, labels = sampler.sample(8, 8, torch.Generator().manual_seed(0))
    assert tiles.shape == (8, 3, 8 + 2 * PAD, 8 + 2 * PAD) and labels.shape == (8, 8, 8)
    assert all(bool(labels[i].any()) for i in range(4)), "the first half of the tiles lies over an anomaly"
    # Each centre's own pixel (at +PAD in the tile) tells where it came from: its label is the mask there.
    centres = (tiles[:, :2, PAD : PAD + 8, PAD : PAD + 8] * 255).round()
    rows = (centres[:, 0] * (size - 1) / 255).round().long()
    cols = (centres[:, 1] * (size - 1) / 255).round().long()
    inside = (rows >= 10) & (rows <= 13) & (cols >= 20) & (cols <= 23)
    assert int((inside != labels).sum()) <= int(labels.sum()) // 4 + 2  # gradient rounding at the square's edge


def test_balanced_rows_pick_as_many_normal_as_anomalous_patches():
    labels = torch.zeros(2, 8, 8, dtype=torch.bool)
    labels[1, 2:4, 3:8] = True  # 10 anomalous centres
    generator = torch.Generator().manual_seed(0)
    rows, targets = balanced_rows(labels, 16, generator)
    assert targets.tolist() == [1.0] * 8 + [0.0] * 8
    assert labels.flatten()[rows].tolist() == [True] * 8 + [False] * 8
    rows, targets = balanced_rows(labels, 64, generator)
    assert targets.tolist() == [1.0] * 10 + [0.0] * 10 and len(set(rows.tolist())) == 20
    rows, targets = balanced_rows(torch.zeros(1, 4, 4, dtype=torch.bool), 6, generator)
    assert targets.tolist() == [0.0] * 6


def test_sampler_cuts_patches_at_every_scale():
    size = 32
    mask = np.zeros((size, size), bool)
    mask[8:24, 8:24] = True
    sampler = BalancedPatchSampler([_gradient_image(size)], [mask], size, [0.5, 1.0, 2.0])
    assert [m.shape for m in sampler.masks] == [(16, 16), (32, 32), (64, 64)]
    assert [p.shape[-1] for p in sampler.padded] == [16 + 2 * PAD, 32 + 2 * PAD, 64 + 2 * PAD]
    # Anomalous pixels scale with the area: drawn in proportion, the big scale dominates.
    assert sampler.positive_counts.tolist() == [64.0, 256.0, 1024.0]


def test_sampler_without_anomalies_gives_normal_tiles_and_says_so():
    sampler = BalancedPatchSampler([_gradient_image(32)], [np.zeros((32, 32), bool)], 32, [1.0])
    assert not sampler.has_positives
    tiles, labels = sampler.sample(3, 64, torch.Generator().manual_seed(1))
    assert tiles.shape == (3, 3, 32 + 2 * PAD, 32 + 2 * PAD)  # a tile never exceeds the image
    assert not bool(labels.any())


def test_training_without_any_anomalous_pixel_is_refused():
    from ml import registry
    from ml.base import Sample

    pipeline = registry.create("multilevel", {"image_size": 64, "max_steps": 2, "batch_size": 4})
    normal = [Sample(_gradient_image(64), None, 0) for _ in range(6)]
    with pytest.raises(ValueError, match="no training image has an anomalous pixel"):
        pipeline.fit(normal)

"""The distinctive building blocks of the reconstruction family (issue 11), checked
against hand-computed values: SSIM and MS-GMS (thesis eq. 2.4-2.6, 2.9)."""
from __future__ import annotations

import pytest
import torch

from ml.components.ssim import GMS_C, SSIM_C1, gms_map, mean_filter, msgms_loss, msgms_map, ssim_map


def _step(width: int, height: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat grey image and the same image with a vertical step of ``height`` at the middle column."""
    x = torch.full((1, 3, 8, width), 0.5)
    y = x.clone()
    y[..., width // 2 :] += height
    return x, y


def test_ssim_of_two_flat_images_is_the_luminance_term():
    x, y = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.4)
    expected = (2 * 0.2 * 0.4 + SSIM_C1) / (0.2**2 + 0.4**2 + SSIM_C1)  # no variance: the contrast term is 1
    assert torch.allclose(ssim_map(x, y), torch.full((1, 16, 16), expected), atol=1e-5)
    assert torch.allclose(ssim_map(x, x), torch.ones(1, 16, 16), atol=1e-5)


def test_gms_of_a_step_against_a_flat_image_is_low_only_beside_the_step():
    x, y = _step(16, 0.3)
    gms = gms_map(x, y)[0]
    # Prewitt / 3: a step of 0.3 gives gradient 0.3 on the two columns beside it, 0 elsewhere.
    expected = torch.ones(8, 16)
    expected[:, 7:9] = GMS_C / (0.3**2 + GMS_C)
    assert torch.allclose(gms, expected, atol=1e-5)


def test_msgms_loss_of_a_step_matches_the_hand_computed_mean_over_four_scales():
    width, h = 32, 0.3
    x, y = _step(width, h)
    per_edge = h**2 / (h**2 + GMS_C)  # 1 - GMS on the two columns beside the step
    # Eq. 2.5: at scale l (width / 2^l, 2x2 average pooling keeps the step sharp) two columns
    # of width / 2^l differ; average the four scales.
    expected = sum(2 / (width / 2**l) * per_edge for l in range(4)) / 4
    assert msgms_loss(x, y).item() == pytest.approx(expected, rel=1e-4)
    assert msgms_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_msgms_map_is_one_where_images_agree_and_lowest_at_the_difference():
    x, y = _step(32, 0.3)
    m = msgms_map(x, y)[0]
    assert m.shape == (8, 32)
    assert torch.allclose(m[:, :4], torch.ones(8, 4), atol=1e-5)
    assert m[0].argmin().item() in (15, 16)
    assert torch.allclose(msgms_map(x, x), torch.ones(1, 8, 32), atol=1e-5)


def test_mean_filter_keeps_size_and_the_mean_of_a_flat_map():
    maps = torch.full((2, 20, 24), 3.0)
    for size in (1, 4, 21):
        out = mean_filter(maps, size)
        assert out.shape == maps.shape
        assert torch.allclose(out, maps)


@pytest.mark.parametrize("cell", [2, 4, 8, 16, 24])
def test_riad_complementary_grid_masks_cover_every_pixel_exactly_once(cell):
    from ml.pipelines.riad.torch_model import complementary_grid_masks

    masks = complementary_grid_masks(64, cell, torch.Generator().manual_seed(cell))
    assert masks.shape == (3, 1, 64, 64)
    assert torch.equal(masks.sum(dim=0), torch.ones(1, 64, 64))
    # Each mask removes whole cells, about a third of the image.
    for mask in masks:
        assert abs(mask.sum().item() - 64 * 64 / 3) <= cell * cell
        block = mask[0, :cell, :cell]
        assert block.min() == block.max()


def test_riad_rebuild_takes_each_pixel_from_the_copy_that_missed_it():
    from ml.pipelines.riad.torch_model import RIADModel, complementary_grid_masks

    model = RIADModel(base_channels=4).eval()
    x = torch.rand(2, 3, 64, 64)
    masks = complementary_grid_masks(64, 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        rebuild = model(x, masks)
        # Every pixel's value comes from the inpainting of the copy that had it removed.
        copy = x * (1 - masks[1])
        expected = model.unet(copy) * masks[1]
    assert torch.allclose(rebuild * masks[1], expected, atol=1e-5)


def _smai_pipeline(**config):
    from ml.pipelines.smai.pipeline import SMAIPipeline

    torch.manual_seed(0)
    pipeline = SMAIPipeline({"image_size": 64, "n_segments": 12, "masked_superpixels": 2, "base_channels": 4, **config})
    pipeline.fitted = True
    return pipeline


def _smooth_image() -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    return torch.stack([xx, yy, (xx + yy) / 2]).unsqueeze(0)


@pytest.mark.parametrize("kind", ["ssim", "l2"])
def test_smai_batched_masking_equals_masking_superpixels_one_by_one(kind):
    from ml.components.ssim import ssim_map
    from ml.pipelines.smai.torch_model import holes

    pipeline = _smai_pipeline(superpixels_per_pass=1, inference_batch=5, anomaly_map=kind)
    x = _smooth_image()
    labels = pipeline.auxiliary(x)
    with torch.no_grad():
        batched, score = pipeline.anomaly_maps(x, labels)
        expected = torch.zeros(1, 64, 64)
        count = int(labels.max()) + 1
        assert count > 4
        for superpixel in range(count):  # eq. 2-3 literally: mask one superpixel, restore, compare in the hole
            hole = holes(labels[0], [[superpixel]])
            restored = pipeline.model.inpaint(x, hole)
            error = (x - restored).pow(2).sum(1) if kind == "l2" else 1 - ssim_map(x, restored)
            expected += error * hole[:, 0]
    # Float32 convolutions of 5 copies at once and of 1 round differently per CPU kind; SSIM's
    # divisions amplify that to ~2e-5 on some (AMD EPYC): far below what a wrong hole would change (~0.1).
    assert torch.allclose(batched, expected, atol=1e-4)
    assert score.item() == pytest.approx(expected.max().item(), rel=1e-5)


def test_smai_passes_restore_every_superpixel_once_and_never_two_neighbours_together():
    from ml.pipelines.smai.torch_model import masking_passes, neighbours

    pipeline = _smai_pipeline()
    labels = pipeline.auxiliary(_smooth_image())[0]
    graph = neighbours(labels)
    passes = masking_passes(labels, per_pass=3)
    flat = [v for p in passes for v in p]
    assert sorted(flat) == sorted(graph)
    assert all(len(p) <= 3 for p in passes)
    for p in passes:
        assert not any(b in graph[a] for a in p for b in p)
    assert len(passes) < len(graph)


def test_adain_gives_each_channel_the_requested_mean_and_deviation():
    from ml.pipelines.utad.torch_model import adain

    torch.manual_seed(0)
    k = torch.randn(2, 5, 16, 16) * 3 + 7
    gamma, beta = torch.rand(2, 5) * 2 + 0.5, torch.randn(2, 5)
    out = adain(k, gamma, beta)
    assert torch.allclose(out.mean(dim=(2, 3)), beta, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), gamma, atol=1e-3)
    # The content's spatial pattern survives: same order of values within a channel.
    assert torch.equal(out[0, 0].flatten().argsort(), k[0, 0].flatten().argsort())


@pytest.mark.parametrize("size", [8, 13])
def test_inception_block_keeps_the_size_and_splits_channels_over_four_branches(size):
    from ml.pipelines.utad.torch_model import InceptionBlock

    block = InceptionBlock(6, 12)
    out = block(torch.rand(3, 6, size, size))
    assert out.shape == (3, 12, size, size)
    assert [b(torch.rand(1, 6, size, size)).shape[1] for b in block.branches] == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="divisible by 4"):
        InceptionBlock(6, 10)


def test_utad_levels_combine_by_product_or_sum():
    from ml.pipelines.utad.anomaly_map import error_map

    torch.manual_seed(0)
    levels = {"a": torch.rand(4, 3, 8, 8), "b": torch.rand(4, 5, 4, 4)}  # [x; x^; m; m^] of one image
    product, total = error_map(levels, 1, 8, "product"), error_map(levels, 1, 8, "sum")
    per_level = []
    for f in levels.values():
        x, xh, m, mh = f.split(1)
        e = (x - xh).abs().mean(1) + (m - mh).abs().mean(1) + (x - m).abs().mean(1)
        per_level.append(torch.nn.functional.interpolate(e[:, None], size=8, mode="bilinear", align_corners=False)[:, 0])
    assert torch.allclose(product, per_level[0] * per_level[1], atol=1e-6)
    assert torch.allclose(total, per_level[0] + per_level[1], atol=1e-6)


def test_inpainting_decoder_step_equals_upsampling_concatenating_and_convolving():
    """The decoder never builds the upsampled and concatenated maps; its answer, and the
    gradients training gets through it, must be those of the textbook step."""
    import torch.nn.functional as F

    from ml.components.upsampling import upsample_concat_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6 + 4, 5, 3, padding=1)
    h = torch.randn(2, 6, 7, 9, requires_grad=True)
    skip = torch.randn(2, 4, 14, 18, requires_grad=True)
    expected = conv(torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], dim=1))
    got = upsample_concat_conv(h, skip, conv)
    assert torch.allclose(got, expected, atol=1e-5)
    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((expected * weights).sum(), [h, skip, conv.weight])
    got_grads = torch.autograd.grad((got * weights).sum(), [h, skip, conv.weight])
    for a, b in zip(got_grads, grads):
        assert torch.allclose(a, b, atol=1e-4)
    # Channels-last maps (the U-Net's layout) give the same answer.
    channels_last = upsample_concat_conv(
        h.contiguous(memory_format=torch.channels_last), skip.contiguous(memory_format=torch.channels_last), conv
    )
    assert torch.allclose(channels_last, expected, atol=1e-5)


def test_inpainting_unet_answers_the_same_in_chunks_and_after_its_weights_change():
    from ml.components.inpainting import InpaintingUNet

    torch.manual_seed(0)
    unet = InpaintingUNet(in_channels=3, base_channels=4, attention=False).eval()
    unet.cpu_chunk = 2
    x = torch.rand(5, 3, 32, 32)
    whole = unet(x)  # with gradients: one pass, no cached kernels
    with torch.no_grad():
        assert torch.allclose(unet(x), whole, atol=1e-6)  # chunks of 2 images, cached phase kernels
        for parameter in unet.up.parameters():
            parameter.mul_(0.5)
        changed = unet(x)
    assert torch.allclose(changed, unet(x), atol=1e-6)
    assert not torch.allclose(changed, whole, atol=1e-3)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_conv_equals_convolving_the_upsampled_map(kernel, channels_last):
    import torch.nn.functional as F

    from ml.components.upsampling import run_sequential, upsample_conv

    torch.manual_seed(kernel)
    conv = torch.nn.Conv2d(6, 5, kernel, padding=kernel // 2)
    h = torch.randn(2, 6, 5, 7, requires_grad=True)
    expected = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
    source = h.contiguous(memory_format=torch.channels_last) if channels_last else h
    got = upsample_conv(source, conv)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    weights = torch.randn_like(expected)
    for a, b in zip(
        torch.autograd.grad((got * weights).sum(), [h, conv.weight, conv.bias]),
        torch.autograd.grad((expected * weights).sum(), [h, conv.weight, conv.bias]),
    ):
        assert torch.allclose(a, b, atol=1e-4)
    # As a step of a Sequential: the same answer as the modules run one by one.
    layers = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="nearest"), conv, torch.nn.ReLU())
    with torch.no_grad():
        assert torch.allclose(run_sequential(layers, h), layers(h), atol=1e-5)


def test_utad_norms_match_the_textbook_ones_in_both_memory_layouts():
    import torch.nn.functional as F

    from ml.pipelines.utad.torch_model import InstanceNorm, LayerNorm, adain

    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, 9) * 3 + 2
    gamma, beta = torch.rand(2, 5) + 0.5, torch.randn(2, 5)
    layer_norm = LayerNorm(5)
    with torch.no_grad():
        layer_norm.weight.copy_(torch.rand(5) + 0.5)
        layer_norm.bias.copy_(torch.randn(5))
    expected_layer = F.layer_norm(x, x.shape[1:]) * layer_norm.weight[:, None, None] + layer_norm.bias[:, None, None]
    expected_adain = gamma[:, :, None, None] * F.instance_norm(x) + beta[:, :, None, None]
    for layout in (torch.contiguous_format, torch.channels_last):
        t = x.contiguous(memory_format=layout)
        assert torch.allclose(InstanceNorm(5)(t), F.instance_norm(x), atol=1e-5)
        assert torch.allclose(layer_norm(t), expected_layer, atol=1e-5)
        assert torch.allclose(adain(t, gamma, beta), expected_adain, atol=1e-5)

"""U-Net blocks, losses, augmentation and the training loop of the `unet` pipeline (tiny 64x64 data)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.base import Sample
from ml.components.unet import UNet
from ml.config import ConfigError
from ml.pipelines.unet import UNetPipeline
from ml.pipelines.unet.loss import SegmentationLoss, consistency_loss, soft_dice_loss, soft_iou_loss
from ml.pipelines.unet.pipeline import augment_batch, binary_mask


def _tiny_samples(n: int = 6, size: int = 64, seed: int = 0) -> list[Sample]:
    """Grey noisy surfaces; odd ones carry a bright square defect with its mask, even ones are normal."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        image = (rng.normal(110, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if i % 2:
            y, x = rng.integers(4, size - 20, 2)
            image[y : y + 14, x : x + 14] = (230, 60, 40)
            mask[y : y + 14, x : x + 14] = 255
            samples.append(Sample(image, mask, 1, f"defect{i}"))
        else:
            samples.append(Sample(image, None, 0, f"normal{i}"))
    return samples


def test_unet_keeps_resolution_and_gives_one_logit_channel():
    net = UNet(in_channels=3, out_channels=1, base_channels=4)
    out = net(torch.zeros(2, 3, 64, 96))
    assert out.shape == (2, 1, 64, 96)
    assert len(net.down) == 4 and len(net.up) == 4


def test_unet_accepts_six_channel_input_for_image_plus_residual():
    assert UNet(in_channels=6, base_channels=4)(torch.zeros(1, 6, 32, 32)).shape == (1, 1, 32, 32)


def test_unet_rejects_bad_shapes_with_a_message():
    net = UNet(base_channels=4)
    with pytest.raises(ValueError, match="divisible by 16"):
        net(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.zeros(1, 1, 32, 32))


def test_perfect_prediction_has_near_zero_loss():
    target = torch.zeros(2, 1, 16, 16)
    target[0, 0, 4:10, 4:10] = 1
    logits = (target * 2 - 1) * 30  # sigmoid -> 0 or 1 almost exactly
    total, terms = SegmentationLoss()(logits, target)
    assert terms["dice"] < 1e-4 and terms["iou"] < 1e-4 and terms["bce"] < 1e-4
    assert float(total) < 1e-3


def test_empty_mask_and_empty_prediction_is_zero_loss():
    target = torch.zeros(1, 1, 8, 8)
    logits = torch.full_like(target, -30.0)
    assert float(soft_dice_loss(logits, target)) < 1e-4
    assert float(soft_iou_loss(logits, target)) < 1e-4


def test_dice_and_iou_of_half_overlap_match_hand_values():
    # Prediction covers 2 pixels, target 2 pixels, one in common: Dice 2*1/4 = 0.5, IoU 1/3.
    target = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]]).expand(1, 1, 100, 4).clone()
    pred = torch.tensor([[[[0.0, 1.0, 1.0, 0.0]]]]).expand(1, 1, 100, 4).clone()
    logits = (pred * 2 - 1) * 30
    assert float(soft_dice_loss(logits, target)) == pytest.approx(0.5, abs=0.01)
    assert float(soft_iou_loss(logits, target)) == pytest.approx(2 / 3, abs=0.01)


def test_completely_wrong_prediction_has_dice_and_iou_loss_near_one():
    target = torch.zeros(1, 1, 32, 32)
    target[..., :16] = 1
    logits = (1 - target) * 60 - 30
    assert float(soft_dice_loss(logits, target)) > 0.99
    assert float(soft_iou_loss(logits, target)) > 0.99


def test_consistency_loss_is_zero_for_equal_maps_and_positive_otherwise():
    a = torch.randn(2, 1, 8, 8)
    assert float(consistency_loss(a, a.clone())) == 0.0
    assert float(consistency_loss(a, -a)) > 0.0


def test_augmentation_keeps_image_and_mask_aligned():
    # The mask marks exactly the pixels whose red channel is 1: after flips
    # (and colour changes, which keep the marked pixels the reddest), the mask
    # must still mark them.
    images = torch.zeros(8, 3, 32, 32)
    masks = torch.zeros(8, 1, 32, 32)
    for i in range(8):
        images[i, 0, 2 + i : 9 + i, 3 : 12 + i] = 1.0
        masks[i, 0, 2 + i : 9 + i, 3 : 12 + i] = 1.0
    gen = torch.Generator().manual_seed(3)
    aug_images, aug_masks = augment_batch(images, masks, gen, flips=True, color=False)
    assert torch.equal(aug_images[:, :1], aug_masks)
    assert not torch.equal(aug_masks, masks)  # some flip happened
    aug_images, aug_masks = augment_batch(images, masks, torch.Generator().manual_seed(3), flips=True, color=True)
    red = aug_images[:, 0] - aug_images[:, 1]
    for i in range(8):
        inside = red[i][aug_masks[i, 0] > 0]
        outside = red[i][aug_masks[i, 0] == 0]
        assert inside.min() > outside.max()


def test_binary_mask_accepts_255_and_01_masks():
    assert binary_mask(np.array([[0, 255]], np.uint8)).tolist() == [[False, True]]
    assert binary_mask(np.array([[0, 1]], np.uint8)).tolist() == [[False, True]]
    assert binary_mask(np.array([[0.2, 0.7]])).tolist() == [[False, True]]


def test_a_few_steps_lower_the_loss_and_predict_maps_at_input_resolution():
    pipeline = UNetPipeline(
        {"image_size": 32, "max_steps": 24, "val_every": 4, "warmup_steps": 2, "base_channels": 8, "batch_size": 3,
         "learning_rate": 3e-3, "encoder": "plain"}
    )
    seen = []
    pipeline.fit(_tiny_samples(), progress=lambda stage, fraction, metrics=None: seen.append((stage, fraction)))
    history = [loss for _, loss in pipeline.meta["training"]["curves"]["train_loss"]]
    assert len(history) == 6
    assert history[-1] < history[0]
    assert any(stage == "train" for stage, _ in seen) and seen[-1][0] == "calibrate"
    fractions = [f for stage, f in seen if stage == "train"]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert pipeline.threshold == 0.5  # no validation data: the sigmoid's natural point

    images = [s.image for s in _tiny_samples(2, size=64, seed=9)] + [np.zeros((50, 70, 3), np.uint8)]
    preds = pipeline.predict(images)
    assert preds.scores.shape == (3,)
    assert [m.shape for m in preds.maps] == [(64, 64), (64, 64), (50, 70)]
    assert all(0.0 <= m.min() and m.max() <= 1.0 for m in preds.maps)


def test_consistency_loss_option_trains_and_reports_its_term():
    pipeline = UNetPipeline({"image_size": 32, "max_steps": 2, "base_channels": 4, "consistency_weight": 0.5, "encoder": "plain"})
    terms = []
    pipeline.fit(_tiny_samples(4, size=32), progress=lambda s, f, m=None: terms.append(m or {}))
    assert any("consistency" in m for m in terms)


def test_unlabeled_samples_are_left_out_of_training():
    samples = _tiny_samples(4, size=32) + [Sample(np.zeros((32, 32, 3), np.uint8), None, None, "unknown")]
    pipeline = UNetPipeline({"image_size": 32, "max_steps": 2, "base_channels": 4, "encoder": "plain"})
    pipeline.fit(samples)
    assert pipeline.meta["train_images"] == 4 and pipeline.meta["skipped_unlabeled"] == 1


def test_training_without_any_annotated_image_is_refused():
    pipeline = UNetPipeline({"image_size": 32, "max_steps": 2, "base_channels": 4, "encoder": "plain"})
    with pytest.raises(ValueError, match="none of the 1 training samples"):
        pipeline.fit([Sample(np.zeros((32, 32, 3), np.uint8))])


def test_image_plus_residual_input_needs_the_vae_pipeline():
    with pytest.raises(ConfigError) as err:
        UNetPipeline({"input": "image+residual"})
    assert err.value.key == "input" and "vae" in str(err.value)


def test_image_size_must_be_divisible_by_the_encoders_downsampling():
    with pytest.raises(ConfigError) as err:
        UNetPipeline({"image_size": 72, "encoder": "plain"})
    assert err.value.key == "image_size" and "16" in str(err.value)
    with pytest.raises(ConfigError) as err:
        UNetPipeline({"image_size": 80})  # fine for the plain U-Net, not for Lite0's stride 32
    assert err.value.key == "image_size" and "32" in str(err.value)


def test_colour_jitter_at_mid_draws_is_the_identity_and_keeps_greys_grey():
    from ml.pipelines.unet.pipeline import _jitter_colour

    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    same = _jitter_colour(images, torch.full((3, 4), 0.5))
    torch.testing.assert_close(same, images, atol=1e-5, rtol=0)
    grey = torch.full((2, 3, 4, 4), 0.4)
    shifted = _jitter_colour(grey, torch.tensor([[0.5, 0.5, 0.9, 0.0], [0.5, 0.5, 0.1, 1.0]]))
    torch.testing.assert_close(shifted, grey, atol=1e-5, rtol=0)
    changed = _jitter_colour(images, torch.tensor([[0.0, 1.0, 0.0, 1.0]] * 3))
    assert (changed - images).abs().mean() > 0.01
    assert changed.min() >= 0 and changed.max() <= 1

"""The rail pipeline's own parts: losses (eq. 1, 2), the patch autoencoder and eq. 4, the normal
range with both bounds, and what predict hands the platform (rail mask and boxes per image)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import registry
from ml.data.rail_synthetic import generate_rail
from ml.pipelines.rail.loss import focal_loss, weighted_bce
from ml.pipelines.rail.torch_model import PatchAutoencoder, reconstruction_error, silence_dead_units


def test_weighted_bce_weighs_rail_pixels_by_w1_and_background_by_w0():
    logits = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere: -log p = log 2
    rail = torch.ones(1, 1, 2, 2)
    background = torch.zeros(1, 1, 2, 2)
    assert float(weighted_bce(logits, rail)) == pytest.approx(0.8 * np.log(2), rel=1e-5)
    assert float(weighted_bce(logits, background)) == pytest.approx(0.2 * np.log(2), rel=1e-5)


def test_focal_loss_down_weights_easy_pixels():
    target = torch.ones(1, 1, 1, 2)
    easy, hard = torch.full((1, 1, 1, 2), 4.0), torch.full((1, 1, 1, 2), -1.0)
    p_easy = torch.sigmoid(torch.tensor(4.0))
    assert float(focal_loss(easy, target)) == pytest.approx(float(-0.8 * (1 - p_easy) ** 2 * torch.log(p_easy)), rel=1e-4)
    assert float(focal_loss(hard, target)) > 50 * float(focal_loss(easy, target))
    # gamma 0 and alpha 0.5 is half the plain cross-entropy
    logits = torch.randn(1, 1, 4, 4)
    y = (torch.rand(1, 1, 4, 4) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert float(focal_loss(logits, y, alpha=0.5, gamma=0.0)) == pytest.approx(0.5 * float(bce), rel=1e-5)


def test_autoencoder_shapes_and_eq_4():
    model = PatchAutoencoder(16, 64, 256, 128).eval()
    x = torch.rand(5, 3, 16, 16)
    out = model(x)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert model.encoder(x).shape == (5, 128)
    error = reconstruction_error(x, torch.zeros_like(x))
    assert torch.allclose(error, x.pow(2).flatten(1).sum(1).sqrt())
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        model(torch.rand(2, 3, 20, 20))


def test_a_unit_constant_in_training_cannot_wreck_the_reconstruction_of_an_unusual_patch():
    torch.manual_seed(0)
    model = PatchAutoencoder(8, 4, 16, 8)
    normal = torch.rand(256, 3, 8, 8) * 0.5 + 0.25
    hidden = model.encoder[4]  # the dense layer whose ReLU outputs the second batch norm sees
    with torch.no_grad():
        hidden.bias[:3] = -1e3  # three units that never fire on the normal patches: dead in training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.reset_running_stats()
                module.momentum = None  # plain averages: the normal patches' batch-norm statistics
        model.train()
        for _ in range(5):
            model(normal)
    model.eval()
    norm = model.encoder[6]
    assert float(norm.running_var[:3].max()) < 1e-20 < float(norm.running_var[3:].min())
    odd = torch.rand(4, 3, 8, 8)
    with torch.no_grad():
        trained = model.encoder(normal)
        hidden.bias[:3] = 0.2  # an unusual patch wakes the dead units (the bias stands in for it)
        before = model.encoder(odd)
        silenced = silence_dead_units(model)
        after = model.encoder(odd)
        hidden.bias[:3] = -1e3
        normal_after = model.encoder(normal)
    assert silenced["encoder.6"] == 3  # (the first batch norm has dead conv positions of its own)
    # each woken unit is 0.2 / sqrt(eps), about 60, out before; after, the code the decoder sees stays
    # as near the normal patches' codes as the live units alone take it
    assert float((before - trained.mean(0)).abs().max()) > 10 * float((after - trained.mean(0)).abs().max())
    assert torch.equal(norm.weight[:3], torch.zeros(3)) and bool((norm.weight[3:] != 0).all())
    # normal patches are encoded as before, up to the few of them on which a silenced unit fired
    assert float((normal_after - trained).abs().mean()) < 0.01 * float(trained.std())


def test_pooled_error_ignores_fine_grain_but_keeps_a_colour_shift():
    x = torch.full((2, 3, 16, 16), 0.5)
    grain = x.clone()
    grain[0, :, ::2, :] += 0.2  # stripes one pixel apart: ballast grain the autoencoder cannot rebuild
    grain[0, :, 1::2, :] -= 0.2
    grain[1] += 0.2  # the whole patch a different colour: an object
    per_pixel = reconstruction_error(grain, x)
    pooled = reconstruction_error(grain, x, pool=4)
    assert per_pixel[0] == pytest.approx(per_pixel[1])  # eq. 4 cannot tell them apart
    assert float(pooled[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(pooled[1]) == pytest.approx(float(np.sqrt(3 * 16 * 0.04)), rel=1e-5)


def test_error_pooling_must_divide_the_patch_size():
    from ml.config import ConfigError

    with pytest.raises(ConfigError, match="error_pooling"):
        registry.validate_config("rail", {"patch_size": 16, "error_pooling": 3})
    paper = registry.validate_config("rail", {}, "paper")
    assert paper["error_pooling"] == 1 and paper["scene_normalization"] is False and paper["range_bounds"] == "both"
    assert paper["silence_dead_units"] is False and registry.validate_config("rail", {})["silence_dead_units"] is True


def test_scene_normalisation_flags_one_odd_patch_not_a_uniformly_harder_scene():
    from ml.pipelines.rail.centrelines import Patch

    pipeline = registry.create("rail", {"image_size": 64, "encoder": "plain"})
    pipeline.error_reference = 2.0
    patches = [Patch(0, 0, 8, 0, i) for i in range(8)] + [Patch(0, 0, 8, 0, i, between=True) for i in range(6)]
    calm = np.r_[np.full(8, 1.0), np.full(6, 0.5)]  # between-rail patches rebuild better than rail patches
    rainy = calm * 3.0  # weather makes every patch of the scene harder alike
    obstacle = calm.copy()
    obstacle[10] = 2.0  # one between-rail patch four times its kind's median
    for errors in (calm, rainy):
        assert pipeline._scene_normalized(errors, patches) == pytest.approx(np.ones(14))
    assert pipeline._scene_normalized(obstacle, patches)[10] == pytest.approx(4.0)
    # Too few patches to take a median of: the normal patches' median is the reference.
    assert pipeline._scene_normalized(np.array([1.0, 4.0]), patches[:2]) == pytest.approx([0.5, 2.0])
    pipeline.config.scene_normalization = False
    assert pipeline._scene_normalized(rainy, patches) is rainy


@pytest.fixture(scope="module")
def tiny_rail():
    torch.set_num_threads(2)
    pipeline = registry.create(
        "rail",
        {"image_size": 64, "encoder": "plain", "base_channels": 8, "max_steps": 3, "warmup_steps": 1,
         "ae_steps": 5, "hidden_units": 32, "latent_size": 16, "conv_channels": 8, "patch_max": 10, "patch_min": 6},
    )
    samples = generate_rail(8, 4, width=128, height=64, seed=3)
    pipeline.fit(samples[:6], samples[6:8] + samples[8:])
    return pipeline, samples


def test_both_bounds_of_the_normal_range_flag_a_patch_when_asked(tiny_rail):
    pipeline, _ = tiny_rail
    lo, hi = pipeline.error_range
    assert 0 < lo <= hi
    errors = np.array([lo, (lo + hi) / 2, hi, hi * 1.5, lo / 2])
    assert pipeline.config.range_bounds == "upper"  # the default: only the maximum flags a patch
    assert pipeline._deviation(errors) == pytest.approx(errors / hi)
    pipeline.config.range_bounds = "both"  # the paper's rule
    try:
        deviation = pipeline._deviation(errors)
    finally:
        pipeline.config.range_bounds = "upper"
    assert deviation[:3] == pytest.approx([max(lo / hi, 1.0), max((lo + hi) / 2 / hi, lo / ((lo + hi) / 2)), 1.0])
    assert (deviation[:3] <= 1.0 + 1e-9).all()
    assert deviation[3] == pytest.approx(1.5) and deviation[4] == pytest.approx(2.0)
    assert pipeline.threshold == 1.0  # the paper's min/max rule


def test_predict_gives_each_image_its_rail_mask_and_boxes_at_input_resolution(tiny_rail):
    pipeline, samples = tiny_rail
    images = [samples[8].image, np.ascontiguousarray(samples[9].image[:60, :100])]
    predictions = pipeline.predict(images)
    assert len(predictions.extras) == 2
    for image, extra, anomaly_map in zip(images, predictions.extras, predictions.maps):
        assert extra["rail_mask"].shape == image.shape[:2] and extra["rail_mask"].dtype == np.uint8
        assert np.asarray(anomaly_map).shape == image.shape[:2]
        for box in extra["boxes"]:
            assert box["score"] > pipeline.threshold
            assert 0 <= box["x"] and box["x"] + box["width"] <= image.shape[1] + 1e-6
            assert 0 <= box["y"] and box["y"] + box["height"] <= image.shape[0] + 1e-6


def test_training_without_any_rail_mask_says_what_is_missing():
    pipeline = registry.create("rail", {"image_size": 64, "encoder": "plain", "max_steps": 2})
    samples = generate_rail(6, 0, width=128, height=64, seed=0)
    for s in samples:
        s.class_masks = None
    with pytest.raises(ValueError, match="'rail' mask"):
        pipeline.fit(samples)


def test_the_rail_threshold_is_the_grid_value_with_the_best_iou():
    from ml.pipelines.rail.pipeline import best_rail_threshold

    truth = torch.tensor([True, True, False, False, False, False])
    # Weighted BCE inflates probabilities: the background sits at 0.55-0.6, so 0.5 would call it rail.
    probabilities = torch.tensor([0.9, 0.72, 0.6, 0.55, 0.2, 0.1])
    threshold, iou = best_rail_threshold(probabilities, truth)
    assert 0.6 <= threshold < 0.72 and iou == 1.0
    assert best_rail_threshold(torch.tensor([0.9, 0.1]), torch.tensor([True, False])) == (0.5, 1.0)  # ties: nearest 0.5


def test_the_calibrated_rail_threshold_is_recorded_and_survives_saving(tiny_rail, tmp_path):
    from ml.pipelines.rail.pipeline import THRESHOLD_GRID, RailPipeline

    pipeline, samples = tiny_rail
    chosen = pipeline.meta["segmentation_threshold"]
    assert chosen["source"] == "rail IoU on held-back validation images"
    assert chosen["value"] == pipeline.rail_threshold and pipeline.rail_threshold in THRESHOLD_GRID
    pipeline.save(tmp_path / "rail.pt")
    loaded = RailPipeline.load(tmp_path / "rail.pt")
    assert loaded.rail_threshold == pipeline.rail_threshold
    first, second = pipeline.predict([samples[8].image]), loaded.predict([samples[8].image])
    assert np.array_equal(first.extras[0]["rail_mask"], second.extras[0]["rail_mask"])


def test_a_model_saved_before_scene_normalisation_keeps_scoring_the_papers_way(tiny_rail, tmp_path):
    from ml.pipelines.rail.pipeline import RailPipeline

    pipeline, samples = tiny_rail
    assert pipeline.error_reference > 0 and pipeline.meta["error_reference"] == pipeline.error_reference
    state = pipeline.state_tensors()
    del state["error_reference"]  # as written before the option existed: its range is of raw eq. 4 errors
    old = registry.create("rail", dict(pipeline.config.to_dict()))
    old.load_state_tensors(state)
    assert old.config.error_pooling == 1 and old.config.scene_normalization is False and old.config.range_bounds == "both"
    pipeline.save(tmp_path / "rail.pt")
    assert RailPipeline.load(tmp_path / "rail.pt").config.scene_normalization is True


def test_without_calibration_the_configured_rail_threshold_is_used():
    pipeline = registry.create(
        "rail",
        {"image_size": 64, "encoder": "plain", "base_channels": 8, "max_steps": 2, "warmup_steps": 1, "ae_steps": 2,
         "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 6,
         "calibrate_segmentation_threshold": False, "segmentation_threshold": 0.7},
    )
    samples = generate_rail(8, 0, width=128, height=64, seed=4)
    pipeline.fit(samples[:6], samples[6:])
    assert pipeline.rail_threshold is None
    assert pipeline.meta["segmentation_threshold"] == {"value": 0.7, "source": "configured"}


def test_a_patch_scores_its_error_to_a_power_times_its_feature_distance_each_against_its_scene():
    from ml.pipelines.rail.centrelines import Patch

    pipeline = registry.create("rail", {"image_size": 64, "encoder": "plain"})
    cfg = pipeline.config
    assert cfg.patch_score == "reconstruction_x_features" and cfg.error_exponent == 0.25 and cfg.distance_normalization == 0.5
    patches = [Patch(0, 0, 8, 0, i) for i in range(10)]
    errors = np.ones(10)
    distances = np.full(10, 0.25)
    distances[3] = 0.75  # a shape the normal patches do not have, rebuilt well by the autoencoder
    errors[7] = 16.0  # a colour the autoencoder cannot rebuild, features as usual
    scores = pipeline._patch_scores(errors, [patches], distances)[0]
    usual = scores[0]
    # the error counts by its fourth root, the features fully: 3x the distance is 3x the score
    assert scores[3] == pytest.approx(3 * usual) and scores[7] == pytest.approx(2 * usual)
    assert np.delete(scores, [3, 7]) == pytest.approx(np.full(8, usual))
    # a scene whose every patch is 4x as far from the normal ones (foreign as a whole) scores 2x:
    # its distances are divided by the square root of their median; errors 4x higher everywhere change nothing
    foreign = pipeline._patch_scores(errors * 4, [patches], distances * 4)[0]
    assert foreign == pytest.approx(2 * scores)
    cfg.error_exponent, cfg.distance_normalization = 1.0, 1.0  # the plain product of normalised parts
    plain = pipeline._patch_scores(errors, [patches], distances)[0]
    assert plain[7] == pytest.approx(16.0) and plain[3] == pytest.approx(3.0) and plain[0] == pytest.approx(1.0)
    # Without distances (the paper's score) only the error counts, as it is.
    assert pipeline._patch_scores(errors, [patches])[0][7] == pytest.approx(16.0)


def test_the_feature_distance_rises_on_a_patch_covered_by_an_object():
    from ml.data.io import resize_mask
    from ml.pipelines.rail.pipeline import rail_mask_of

    pipeline = registry.create(
        "rail",
        {"image_size": 128, "encoder": "plain", "base_channels": 8, "max_steps": 2, "warmup_steps": 1, "ae_steps": 2,
         "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 7, "patch_step": 1},
    )
    pipeline.fit(generate_rail(12, 0, seed=7))  # 512x256 frames, features at 384 px as in the benchmark
    assert pipeline.feature_bank is not None and pipeline.feature_reference > 0
    sample = generate_rail(1, 0, seed=8)[0]  # a normal scene the bank has not seen
    image = sample.image.copy()
    h, w = pipeline.config.working_size()
    rails = resize_mask(rail_mask_of(sample).astype(np.uint8), (h, w)) > 0  # the drawn rails, as the bank's patches
    patches = pipeline._patches(pipeline._stack([image]), [rails])[0][0]
    assert len(patches) >= 8

    def distances(im):
        return pipeline._feature_distances(torch.cat(pipeline._patch_features([im], [patches]))).numpy()

    before = distances(image)
    target = patches[2]
    x0, y0, x1, y1 = target.box(w, h)
    image[2 * y0 : 2 * y1, 2 * x0 : 2 * x1] = (230, 20, 200)  # a magenta crate on the track (the frame is twice the working size)
    after = distances(image)
    # The covered patch rises to about 1.5x its distance before and to the top of the scene; only a
    # patch overlapping the crate (the half-step patch beside it sees half of it) may match it.
    assert after[2] > 1.3 * before[2] and before[2] < np.median(before) * 1.1
    assert after[2] >= 0.99 * after.max()
    top = patches[int(np.argmax(after))].box(w, h)
    assert top[0] < x1 and x0 < top[2] and top[1] < y1 and y0 < top[3]


def test_the_feature_network_sees_the_region_of_interest_and_a_margin_and_the_features_stay_the_frames(monkeypatch):
    from ml.data.io import resize_mask
    from ml.pipelines.rail.pipeline import RailPipeline, rail_mask_of

    pipeline = registry.create("rail", {"image_size": 128, "encoder": "plain", "patch_max": 10, "patch_min": 7, "patch_step": 1})
    samples = generate_rail(2, 0, seed=8)
    images = [s.image for s in samples]
    h, w = pipeline.config.working_size()
    rails = [resize_mask(rail_mask_of(s).astype(np.uint8), (h, w)) > 0 for s in samples]
    patches = pipeline._patches(pipeline._stack(images), rails)[0]
    assert min(len(p) for p in patches) >= 8
    seen = []
    extractor = pipeline._feature_extractor()
    monkeypatch.setattr(extractor, "forward", lambda x, forward=extractor.forward: seen.append(x.shape[-2]) or forward(x))

    cut = torch.cat(pipeline._patch_features(images, patches))
    monkeypatch.setattr(RailPipeline, "FEATURE_MARGIN", 10**6)  # the whole frame
    whole = torch.cat(pipeline._patch_features(images, patches))
    # 384 rows at feature_size 384; the region of interest starts at row 192, the margin keeps 64 above it.
    assert seen == [256, 384]
    change = (cut - whole).norm(dim=1)
    assert float(change.median()) < 1e-3 and float(change.max()) < 0.15  # unit vectors, ~0.5 apart from the nearest normal one


def test_the_feature_bank_holds_shifted_copies_so_a_patch_placed_off_the_drawn_rails_finds_its_neighbours():
    config = {"image_size": 128, "encoder": "plain", "base_channels": 8, "max_steps": 2, "warmup_steps": 1, "ae_steps": 2,
              "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 7, "patch_step": 1}
    scenes = generate_rail(8, 0, seed=7)
    plain = registry.create("rail", {**config, "bank_jitter": 0.0})
    plain.fit(scenes)
    jittered = registry.create("rail", config)  # bank_jitter 0.25 by default
    jittered.fit(scenes)
    rows = plain.meta["feature_bank_size"]
    assert rows == plain.meta["train_patches"] and jittered.meta["feature_bank_size"] == 5 * rows
    # The training scenes' own patches moved a quarter of their side (as stage 1's rails can lie off
    # the drawn ones): near a copy in the jittered bank, farther from every row of the plain one.
    sample = scenes[0]
    from ml.data.io import resize_mask
    from ml.pipelines.rail.pipeline import rail_mask_of

    h, w = plain.config.working_size()
    rails = resize_mask(rail_mask_of(sample).astype(np.uint8), (h, w)) > 0
    patches = plain._patches(plain._stack([sample.image]), [rails])[0][0]
    import dataclasses

    moved = [dataclasses.replace(p, x=p.x + p.side / 4) for p in patches]
    features = torch.cat(plain._patch_features([sample.image], [moved]))
    near_plain = plain._feature_distances(features).numpy()
    near_jittered = jittered._feature_distances(features).numpy()
    assert np.median(near_jittered) < 0.4 * np.median(near_plain)  # (measured: 0.10 against 0.41)


def test_the_feature_bank_is_thinned_to_its_limit_and_saved_with_the_model(tmp_path):
    from ml.pipelines.rail.pipeline import RailPipeline

    pipeline = registry.create(
        "rail",
        {"image_size": 64, "encoder": "plain", "base_channels": 8, "max_steps": 2, "warmup_steps": 1, "ae_steps": 2,
         "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 6, "feature_bank_max": 5,
         "feature_size": 64},
    )
    samples = generate_rail(8, 2, width=128, height=64, seed=5)
    pipeline.fit(samples[:6], samples[6:])
    assert pipeline.meta["train_patches"] > 5
    assert len(pipeline.feature_bank) == 5 and pipeline.meta["feature_bank_size"] == 5
    pipeline.save(tmp_path / "rail.pt")
    loaded = RailPipeline.load(tmp_path / "rail.pt")
    assert torch.equal(loaded.feature_bank.cpu(), pipeline.feature_bank.cpu())
    first, second = pipeline.predict([samples[8].image]), loaded.predict([samples[8].image])
    assert np.allclose(first.maps[0], second.maps[0])


def test_a_model_saved_without_a_feature_bank_scores_as_it_was_trained(tiny_rail):
    pipeline, samples = tiny_rail
    state = pipeline.state_tensors()
    del state["feature_bank"], state["feature_reference"]  # as written before the feature distance existed
    old = registry.create("rail", dict(pipeline.config.to_dict()))
    old.load_state_tensors(state)
    # Its range holds reconstruction errors alone, of patches cut from the working-size image.
    assert old.config.patch_score == "reconstruction" and old.config.patch_resolution == "working"
    assert registry.validate_config("rail", {}, "paper")["patch_score"] == "reconstruction"
    assert len(old.predict([samples[8].image]).scores) == 1


def test_a_model_saved_before_the_score_exponents_keeps_the_plain_product(tiny_rail):
    pipeline, samples = tiny_rail
    artifact = pipeline.to_artifact()
    for key in ("error_exponent", "distance_normalization"):  # as written when a patch scored error x distance
        del artifact["config"][key]
    old = type(pipeline).from_artifact(artifact)
    # its normal range holds plain products of fully normalised parts
    assert old.config.error_exponent == 1.0 and old.config.distance_normalization == 1.0
    again = type(pipeline).from_artifact(pipeline.to_artifact())
    assert again.config.error_exponent == 0.25 and again.config.distance_normalization == 0.5
    assert again.predict([samples[8].image]).scores == pytest.approx(pipeline.predict([samples[8].image]).scores)


def test_a_model_saved_before_overlapping_patches_keeps_the_adjacent_ones(tiny_rail):
    pipeline, samples = tiny_rail
    artifact = pipeline.to_artifact()
    assert artifact["config"]["patch_overlap"] is True
    del artifact["config"]["patch_overlap"]  # as written when eq. 3's adjacent patches were all
    old = type(pipeline).from_artifact(artifact)
    assert old.config.patch_overlap is False  # its normal range was measured on adjacent patches
    image = samples[8].image
    new_extras, old_extras = pipeline.predict([image]).extras[0], old.predict([image]).extras[0]
    assert old_extras["patches"] < new_extras["patches"]
    assert registry.validate_config("rail", {}, "paper")["patch_overlap"] is False


def test_the_patch_autoencoder_is_the_same_whether_stage_1_ran_longer_or_was_cut_short():
    # A time bound stops stage 1 after however many steps a busy machine allowed; with the same seed
    # and scenes, the autoencoder must still start from the same weights and see the same batches.
    config = {"image_size": 64, "encoder": "plain", "base_channels": 8, "warmup_steps": 1, "ae_steps": 4, "val_every": 100,
              "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 6, "bank_jitter": 0.0}
    scenes = generate_rail(8, 0, width=128, height=64, seed=5)
    short, longer = registry.create("rail", {**config, "max_steps": 1}), registry.create("rail", {**config, "max_steps": 4})
    short.fit(scenes)
    longer.fit(scenes)
    assert short.meta["segmentation_training"]["steps"] != longer.meta["segmentation_training"]["steps"]
    assert short.meta["train_patches"] == longer.meta["train_patches"]
    for (name, a), (_, b) in zip(short.autoencoder.state_dict().items(), longer.autoencoder.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_far_patch_is_judged_against_the_far_normal_patches_and_a_near_obstacle_stands_out():
    from ml.pipelines.rail.centrelines import Patch

    # Working size 64 x 128: the region of interest is rows 32-63, band 0 (far) rows 32-47, band 1 (near) 48-63.
    pipeline = registry.create("rail", {"image_size": 64, "encoder": "plain", "depth_bands": 2})
    pipeline.feature_reference = 0.4
    far, near = [Patch(20 + 8 * i, 38, 8, 0, i) for i in range(12)], [Patch(20 + 8 * i, 56, 8, 0, 12 + i) for i in range(12)]
    patches = far + near
    # On every normal scene the far patches are twice as hard to rebuild and twice as far from the bank.
    errors, distances = np.r_[np.full(12, 2.0), np.full(12, 1.0)], np.r_[np.full(12, 0.6), np.full(12, 0.3)]
    obstacle = errors.copy()
    obstacle[18] = 2.0  # a near patch that the autoencoder rebuilds only as well as a far normal one
    before = pipeline._patch_scores(obstacle, [patches], distances)[0]
    assert before[18] < before[:12].max()  # without the profile the far normal patches set the range

    pipeline._fit_depth_profile([patches], pipeline._normalized_parts(errors, [patches], distances))
    assert pipeline.depth_profile.shape == (2, 2, 2)
    normal = pipeline._patch_scores(errors, [patches], distances)[0]
    assert normal == pytest.approx(np.ones(24))  # far and near normal patches alike
    after = pipeline._patch_scores(obstacle, [patches], distances)[0]
    assert after[18] == pytest.approx(2 ** 0.25 * after[0]) and after[18] == after.max()
    # No held-back patch between the rails: that kind keeps its scores unchanged.
    assert pipeline.depth_profile[1] == pytest.approx(np.ones((2, 2)))


def test_a_depth_band_with_too_few_normal_patches_takes_the_nearest_bands_median():
    from ml.pipelines.rail.centrelines import Patch

    pipeline = registry.create("rail", {"image_size": 64, "encoder": "plain", "depth_bands": 4, "scene_normalization": False})
    # Bands of 8 rows from row 32: 12 patches in band 1 (rows 40-47), 3 in band 3 (rows 56-63), none elsewhere.
    patches = [Patch(20 + 4 * i, 44, 4, 0, i) for i in range(12)] + [Patch(20 + 4 * i, 60, 4, 0, 12 + i) for i in range(3)]
    errors = np.r_[np.full(12, 3.0), np.full(3, 50.0)]
    pipeline._fit_depth_profile([patches], pipeline._normalized_parts(errors, [patches]))
    assert pipeline.depth_profile[0, :, 0] == pytest.approx([3.0, 3.0, 3.0, 3.0])
    pipeline.config.depth_bands = 0
    pipeline._fit_depth_profile([patches], pipeline._normalized_parts(errors, [patches]))
    assert pipeline.depth_profile is None
    assert pipeline._patch_scores(errors, [patches])[0] == pytest.approx(errors)


def test_the_depth_profile_is_learnt_in_fit_saved_with_the_model_and_absent_from_older_ones(tiny_rail, tmp_path):
    from ml.pipelines.rail.pipeline import RailPipeline

    pipeline, samples = tiny_rail
    assert pipeline.config.depth_bands == 8 and pipeline.depth_profile.shape == (2, 8, 2)
    assert pipeline.meta["depth_profile"]["bands"] == 8 and len(pipeline.meta["depth_profile"]["error"][0]) == 8
    pipeline.save(tmp_path / "rail.pt")
    loaded = RailPipeline.load(tmp_path / "rail.pt")
    assert np.array_equal(loaded.depth_profile, pipeline.depth_profile)
    image = samples[8].image
    assert np.allclose(loaded.predict([image]).maps[0], pipeline.predict([image]).maps[0])
    # A model saved before the profile: its range was measured without one, and it scores without one.
    artifact = pipeline.to_artifact()
    del artifact["config"]["depth_bands"]
    artifact["state"].pop("depth_profile", None)
    old = type(pipeline).from_artifact(artifact)
    assert old.config.depth_bands == 0 and old.depth_profile is None
    assert registry.validate_config("rail", {}, "paper")["depth_bands"] == 0

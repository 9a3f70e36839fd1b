"""bench/rail_heldback.py: a saved rail model scored on held-back synthetic scenes, never the benchmark's
training (seed 0) or test (seed 1) scenes, with config changes and an optional stage-3 refit."""
from __future__ import annotations

import re

import cv2
import pytest
import torch

from bench import rail_heldback
from ml import registry
from ml.data.rail_synthetic import generate_rail


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.set_num_threads(2)
    pipeline = registry.create(
        "rail",
        {"image_size": 64, "encoder": "plain", "base_channels": 8, "max_steps": 2, "warmup_steps": 1, "ae_steps": 3,
         "hidden_units": 16, "latent_size": 8, "conv_channels": 4, "patch_max": 10, "patch_min": 6, "feature_size": 64},
    )
    pipeline.fit(generate_rail(8, 0, seed=0))
    path = tmp_path_factory.mktemp("rail") / "rail.pt"
    pipeline.save(path)
    return path


def _scores(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(image AUROC|pixel AUROC|AU-PRO|box recall|rail mIoU) ([0-9.]+)", text)}


def test_a_saved_model_is_scored_on_held_back_scenes(model_file, capsys):
    assert rail_heldback.main([str(model_file), "--seed", "5", "--scenes", "3"]) == 0
    out = capsys.readouterr().out
    scores = _scores(out)
    assert set(scores) == {"image AUROC", "pixel AUROC", "AU-PRO", "box recall", "rail mIoU"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert "as saved" in out and "held-back seed 5, 3 + 3 scenes" in out


def test_the_benchmarks_own_scenes_and_unknown_fields_are_refused(model_file):
    with pytest.raises(SystemExit, match="training and test scenes"):
        rail_heldback.main([str(model_file), "--seed", "1"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        rail_heldback.main([str(model_file), "--set", "no_such_field=3"])


def test_a_stage_3_setting_is_tried_by_refitting_the_patch_stage(model_file, capsys):
    args = [str(model_file), "--seed", "5", "--scenes", "2", "--training-scenes", "8", "--refit-patch-stage",
            "--set", "patch_score=reconstruction", "--set", "patch_resolution=working"]
    assert rail_heldback.main(args) == 0
    captured = capsys.readouterr()
    assert "stage 3 refitted" in captured.err
    assert captured.out.startswith("patch_score=reconstruction, patch_resolution=working:")


def test_a_stage_2_setting_changes_the_patches_that_are_scored(model_file):
    """``--set`` on a stage-2 field (patch schedule, rails kept) reaches the rails and patches found."""
    pipeline = registry.load(model_file)
    h, w = pipeline.config.working_size()
    samples = generate_rail(2, 0, seed=5)
    given = [cv2.resize(s.class_masks["rail"], (w, h), interpolation=cv2.INTER_NEAREST) > 0 for s in samples]
    images = pipeline._stack([s.image for s in samples])
    before, _, _ = pipeline._patches(images, given)
    assert any(p.index > 0 for patches in before for p in patches)
    rail_heldback.apply_settings(pipeline, ["max_patches=1", "between_rails=false"])
    after, _, _ = pipeline._patches(images, given)
    assert all(p.index == 0 and not p.between for patches in after for p in patches)
    assert sum(map(len, after)) < sum(map(len, before))

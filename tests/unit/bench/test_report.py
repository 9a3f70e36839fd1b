"""The README's benchmark tables are generated from bench/results/*.json: a hand edit fails here."""
from __future__ import annotations

import json

import pytest

from bench import report


def test_readme_tables_match_the_committed_json():
    text = report.README.read_text()
    for name in report.SECTIONS:
        assert f"<!-- bench:{name} -->" in text and f"<!-- /bench:{name} -->" in text, f"README lost the {name} markers"
    assert report.render_readme(text) == text, "README.md's benchmark tables differ from bench/results: run python bench/report.py"
    assert report.main(["--check"]) == 0


def test_a_hand_edited_figure_is_caught():
    text = report.README.read_text()
    start = text.index("<!-- bench:quality -->")
    row = text.index("| 0.9", start)
    edited = text[:row] + "| 0.8" + text[row + 4 :]
    assert report.render_readme(edited) == text


def write(path, run, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "rows": rows}))


def test_rows_of_a_new_run_appear_with_the_run_that_made_them(tmp_path):
    run = {"command": "python bench/quality.py --preset fast", "date": "2026-12-01", "commit": "abc1234", "machine": "2 CPU cores"}
    row = {"dataset": "crackforest (80 / 38)", "protocol": "crackforest", "pipeline": "unet", "preset": "fast",
           "train_images": 80, "test_images": 38, "pixel_auroc": 0.9512, "aupro": float("nan"), "fit_seconds": 61.2,
           "images_per_second": 7.25}
    write(tmp_path / "quality" / "crackforest-unet.json", run, [row])
    table = report.render_quality(tmp_path)
    assert "| crackforest (80 / 38) | `unet` (fast) | 80 images, masks | - | 0.951 | - | - | - | 61 | 7.2 | [1] |" in table
    assert "- [1] `python bench/quality.py --preset fast`, 2026-12-01, commit abc1234, 2 CPU cores." in table
    text = "intro\n<!-- bench:quality -->\nold table\n<!-- /bench:quality -->\nrest\n"
    assert report.render_readme(text, tmp_path) == f"intro\n<!-- bench:quality -->\n{table}\n<!-- /bench:quality -->\nrest\n"


def test_a_results_file_without_its_run_is_refused(tmp_path):
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "x.json").write_text(json.dumps([{"dataset": "d"}]))
    with pytest.raises(ValueError, match="'run' and 'rows'"):
        report.render_quality(tmp_path)


def test_reconstruction_speed_rows_say_whether_each_target_is_met(tmp_path):
    run = {"command": "python bench/reconstruction_speed.py", "date": "2026-12-01", "machine": "2 CPU cores (x86_64), torch 2 with 2 threads"}
    rows = [
        {"pipeline": "riad", "images_per_second": 12.4, "runs": [12.4, 9.6, 14.2], "target": 10.0},
        {"pipeline": "utad", "images_per_second": 6.8, "runs": [5.8, 6.8, 7.0], "target": 10.0},
    ]
    write(tmp_path / "reconstruction_speed.json", run, rows)
    table = report.render_reconstruction_speed(tmp_path)
    assert "| `riad` | 12.4 | 9.6 / 14.2 | >= 10 | yes |" in table
    assert "| `utad` | 6.8 | 5.8 / 7.0 | >= 10 | no |" in table
    assert "2 threads (median)" in table


def test_utad_combine_rows_name_the_thesis_equations(tmp_path):
    run = {"command": "python bench/utad_combine.py", "date": "2026-12-01"}
    rows = [
        {"combine": "product", "precision": "bfloat16", "image_auroc": 0.5, "pixel_auroc": 0.9, "aupro": 0.6, "pixel_f1_max": 0.4,
         "fit_seconds": 600.4, "images_per_second": 6.0, "mean_accuracy": 0.97, "mean_dice": 0.3, "mean_iou": 0.2, "mean_auroc": 0.91},
        {"combine": "sum", "image_auroc": 0.4, "pixel_auroc": 0.88, "aupro": 0.59, "pixel_f1_max": 0.38, "fit_seconds": 600.4, "images_per_second": 6.1},
    ]
    write(tmp_path / "utad_combine.json", run, rows)
    table = report.render_utad_combine(tmp_path)
    # Table 5.5's measures (the thesis' per-image means) sit beside ours; a row without them shows
    # dashes, and a row that does not say its precision was inferred in float32.
    assert "| product (eq. 4.21) | bfloat16 | 0.500 | 0.900 | 0.600 | 0.400 | 0.970 | 0.300 | 0.200 | 0.910 | 600 | 6.0 |" in table
    assert "| sum (eq. 4.19) | float32 | 0.400 | 0.880 | 0.590 | 0.380 | - | - | - | - | 600 | 6.1 |" in table


def test_utad_levels_put_product_and_sum_of_each_level_set_side_by_side(tmp_path):
    run = {"command": "python bench/utad_levels.py /tmp/utad.pt", "date": "2026-12-06"}
    rows = [
        {"levels": ["block2", "block10"], "combine": "product", "dataset": "mpdd_metal_plate_defective_train", "pixel_auroc": 0.971, "aupro": 0.8746, "pixel_f1_max": 0.79},
        {"levels": ["block2", "block10"], "combine": "sum", "dataset": "mpdd_metal_plate_defective_train", "pixel_auroc": 0.9717, "aupro": 0.8752, "pixel_f1_max": 0.7921},
        {"levels": ["block4"], "combine": "product", "dataset": "mpdd_metal_plate_defective_train", "pixel_auroc": 0.9677, "aupro": 0.874, "pixel_f1_max": 0.7777},
    ]
    write(tmp_path / "utad_levels.json", run, rows)
    table = report.render_utad_levels(tmp_path)
    assert "| levels | product (eq. 4.21) on mpdd_metal_plate_defective_train | sum (eq. 4.19) |" in table
    assert "| block2 + block10 | 0.971 / 0.875 / 0.790 | 0.972 / 0.875 / 0.792 |" in table
    # With one level the product and the sum are the same map, so only one is measured.
    assert "| block4 | 0.968 / 0.874 / 0.778 | (the level itself) |" in table
    assert "- [1] `python bench/utad_levels.py /tmp/utad.pt`, 2026-12-06." in table
    assert "Not measured yet" in report.render_utad_levels(tmp_path / "empty")


def test_rail_rows_say_which_of_issue_13s_targets_they_meet(tmp_path):
    run = {"command": "python bench/quality.py --pipelines rail --datasets-only synthetic_rail", "date": "2026-12-01"}
    rows = [{"pipeline": "rail", "rail_miou": 0.8123, "rail_iou": 0.6251, "image_auroc": 0.7, "pixel_auroc": 0.86, "aupro": 0.7,
             "box_recall": 0.3, "fit_seconds": 258.4, "images_per_second": 18.64},
            {"pipeline": "rail", "rail_miou": 0.8123, "rail_iou": 0.6251, "image_auroc": 0.929, "image_auroc_low": 0.8731, "image_auroc_high": 0.9762,
             "pixel_auroc": 0.86, "aupro": 0.7, "box_recall": 0.3, "fit_seconds": 258.4, "images_per_second": 18.64}]
    write(tmp_path / "rail" / "synthetic_rail.json", run, rows)
    table = report.render_rail(tmp_path)
    assert "| 0.812 (meets 0.80) | 0.625 | 0.700 (below 0.95) | - | 0.860 | 0.700 | 0.30 | 258 | 18.6 | [1] |" in table
    # The test scenes' own uncertainty beside the figure (a run written before it shows a dash).
    assert "| 0.929 (below 0.95) | 0.873 - 0.976 | 0.860 |" in table
    assert "- [1] `python bench/quality.py --pipelines rail --datasets-only synthetic_rail`, 2026-12-01." in table


def test_frame_rate_rows_hold_erfnet_on_a_gpu_to_the_real_time_target(tmp_path):
    run = {"command": "python bench/frame_rate.py --devices cpu,cuda", "date": "2026-12-01"}
    rows = [
        {"network": "erfnet", "device": "cpu", "frame": "480x360", "working_size": "480x360", "forward_fps": 3.21, "predict_fps": 2.95, "target": None},
        {"network": "erfnet", "device": "cuda", "frame": "480x360", "working_size": "480x360", "forward_fps": 250.0, "predict_fps": 19.4, "target": 20.0},
    ]
    write(tmp_path / "frame_rate.json", run, rows)
    table = report.render_frame_rate(tmp_path)
    assert "| erfnet | cpu | 480x360 (480x360) | 3.2 | 3.0 | - | - |" in table
    assert "| erfnet | cuda | 480x360 (480x360) | 250.0 | 19.4 | >= 20 | no |" in table


def test_gpu_tables_say_which_step_measured_nothing(tmp_path):
    run = {"command": "python bench/quality.py --device cuda", "date": "2026-12-06", "machine": "1 GPU"}
    write(tmp_path / "quality-mpdd.json", run, [])  # the GPU machine had no copy of mpdd_metal_plate
    write(tmp_path / "reconstruction_speed.json", run, [
        {"pipeline": "multilevel", "images_per_second": 120.0, "runs": [118.0, 121.0], "target": None, "images": 16,
         "source": "synthetic images", "device": "cuda"},
    ])
    text = report.gpu_tables(tmp_path)
    assert "`quality-mpdd.json` [1]: nothing measured" in text
    assert "Reconstruction family and multilevel, images/s at 256 px [2]" in text
    assert "| `multilevel` | 120.0 | 118.0 / 121.0 | - | - |" in text and "CUDA (median)" in text

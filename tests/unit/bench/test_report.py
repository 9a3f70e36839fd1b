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

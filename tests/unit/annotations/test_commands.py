"""manage.py import_dataset / export_dataset: the same import and export, run to completion."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from projects.models import Image, Project
from tests.factories import make_png, make_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def via_zip(tmp_path) -> Path:
    regions = [{"shape_attributes": {"name": "polygon", "all_points_x": [2, 30, 30], "all_points_y": [2, 2, 30]},
                "region_attributes": {}}]
    archive = tmp_path / "cars.zip"
    archive.write_bytes(make_zip({
        "cars/train/a.png": make_png(seed=1),
        "cars/val/b.png": make_png(seed=2),
        "cars/train/via_region_data.json": json.dumps({"a": {"filename": "a.png", "regions": regions}}).encode(),
    }))
    return archive


def test_import_creates_the_project_on_request_and_export_writes_a_zip(via_zip, tmp_path, capsys):
    call_command("import_dataset", "--project", "cars", "--create", "--format", "via", str(via_zip))
    assert "imported 2 images (1 annotated, 1 polygons" in capsys.readouterr().out
    project = Project.objects.get(slug="cars")
    assert sorted(Image.objects.filter(project=project).values_list("split", "state")) == [
        ("train", "anomalous"), ("val", "unlabeled")]

    out = tmp_path / "export.zip"
    call_command("export_dataset", "--project", "cars", "--format", "coco", str(out))
    names = zipfile.ZipFile(out).namelist()
    assert "annotations.json" in names and "images/train/a.png" in names


def test_import_of_a_folder_into_an_existing_project(project, tmp_path):
    root = tmp_path / "plates"
    (root / "train/good").mkdir(parents=True)
    (root / "train/good/a.png").write_bytes(make_png(seed=3))
    call_command("import_dataset", "--project", project.slug, "--format", "mvtec", str(root))
    assert Image.objects.get(project=project).state == "normal"

    call_command("export_dataset", "--project", project.slug, "--format", "mvtec", str(tmp_path / "out"))
    assert (tmp_path / "out/train/good/a.png").is_file()


def test_failures_exit_non_zero_with_the_reason_and_save_nothing(project, tmp_path, via_zip):
    with pytest.raises(CommandError, match="add --create"):
        call_command("import_dataset", "--project", "nope", "--format", "via", str(via_zip))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_dataset", "--project", project.slug, "--format", "via", str(tmp_path / "missing"))
    broken = tmp_path / "broken.zip"
    broken.write_bytes(make_zip({"a.png": make_png(), "via.json": b"[1, 2"}))
    with pytest.raises(CommandError, match="nothing was saved: malformed via dataset: via.json"):
        call_command("import_dataset", "--project", project.slug, "--format", "via", str(broken))
    assert not Image.objects.filter(project=project).exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_dataset", "--project", project.slug, "--format", "coco", str(tmp_path / "full"))


def test_the_command_process_exits_non_zero_with_the_reason(tmp_path):
    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "manage.py", "import_dataset", "--project", "x", "--format", "via", str(tmp_path / "missing")],
        cwd=repo, capture_output=True, text=True, env={**os.environ, "DJANGO_DEBUG": "1"}, timeout=120,
    )
    assert result.returncode != 0 and "no such file or folder" in result.stderr

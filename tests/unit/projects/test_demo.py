"""What `manage.py demo` builds (users, project, images with annotations), without servers."""
from __future__ import annotations

import pytest
from django.contrib.auth import authenticate

from annotations.models import Annotation
from projects import demo
from projects.models import Image, Membership

pytestmark = pytest.mark.django_db

SMALL = {"n_train": 4, "n_test_normal": 2, "n_test_anomalous": 3, "size": 64}


def test_demo_builds_users_project_and_annotated_images():
    project, users = demo.demo_build(log=lambda line: None, **SMALL)
    for name in ("admin", "annotator", "inspector"):
        assert authenticate(username=name, password=f"{name}-demo") is not None
        assert Membership.objects.get(project=project, user__username=name).role == name
    assert users["admin"].is_staff
    images = Image.objects.filter(project=project)
    assert images.filter(split="train", state="normal").count() == 4
    assert images.filter(split="test", state="normal").count() == 2
    assert images.filter(split="test", state="anomalous").count() == 3
    # A val split to calibrate the thresholds on, with annotated defects of every kind.
    assert images.filter(split="val", state="normal").count() == 8
    val_defects = images.filter(split="val", state="anomalous")
    assert val_defects.count() == 3
    assert {name.split("/")[-1].split("_")[0] for name in val_defects.values_list("original_name", flat=True)} == {"scratch", "spot", "crack"}
    # Every defect's mask became at least one polygon.
    assert Annotation.objects.filter(annotation_set__image__project=project).values("annotation_set").distinct().count() == 6


def test_demo_is_deterministic_and_idempotent():
    project, _ = demo.demo_build(log=lambda line: None, **SMALL)
    first = sorted(Image.objects.filter(project=project).values_list("sha256", flat=True))
    again, _ = demo.demo_build(log=lambda line: None, **SMALL)
    assert again.pk == project.pk
    assert sorted(Image.objects.filter(project=project).values_list("sha256", flat=True)) == first


def test_registered_steps_run_after_the_data(monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "demo_steps", [])
    demo.register_step(lambda *, project, users, log: seen.append((project.slug, sorted(users))))
    demo.demo_build(log=lambda line: None, **SMALL)
    assert seen == [("demo", ["admin", "annotator", "inspector"])]


def test_demo_data_folder_is_imported(tmp_path):
    from ml.data.synthetic import write_synthetic_mvtec

    write_synthetic_mvtec(tmp_path / "plates", n_train=3, n_test_normal=1, n_test_anomalous=2, size=64, seed=7)
    project, _ = demo.demo_build(data=tmp_path / "plates", log=lambda line: None)
    assert project.name == "Demo: plates" and project.images.count() == 6


def test_rail_demo_builds_a_rail_project_with_drawn_rails_and_outlined_obstacles():
    users = demo.demo_users_ensure()
    project = demo.demo_rail_project_ensure(users=users, log=lambda line: None)
    assert project.kind == "rail"
    # "rail" from the start; the obstacles' outlines use the default anomaly class.
    assert set(project.label_classes.values_list("name", flat=True)) == {"rail", "anomaly"}
    images = Image.objects.filter(project=project)
    # Rails drawn on 12 normal train scenes leave them normal: rails are not anomalies.
    railed = images.filter(annotation_set__annotations__label_class__name="rail").distinct()
    assert railed.count() == 12 and set(railed.values_list("state", flat=True)) == {"normal"}
    assert images.filter(split="train", state="normal").count() == 36
    assert images.filter(split="test", state="anomalous").count() == 8
    assert images.first().width == 512 and images.first().height == 256
    again = demo.demo_rail_project_ensure(users=users, log=lambda line: None)
    assert again.pk == project.pk and Image.objects.filter(project=project).count() == 52

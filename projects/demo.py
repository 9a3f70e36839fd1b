"""What ``python manage.py demo`` builds, as plain functions (tested without servers).

Steps, each safe to run again:

1. :func:`demo_users_ensure`: users ``admin`` (staff), ``annotator``, ``inspector``,
   password ``<name>-demo``.
2. :func:`demo_project_ensure`: project ``demo`` filled from ``DEMO_DATA`` (a folder
   in MVTec AD layout) or from the deterministic synthetic generator
   (``ml.data.synthetic``: textured surfaces, some with scratches/spots/cracks whose
   masks become polygon annotations) by the registered :data:`demo_data_source`
   (the annotations app's importer, registered in its ``AppConfig.ready()``: this
   floor never imports the floors above it).
3. Every function in :data:`demo_steps`, in order: later floors register theirs
   (the inspection app: train a model, predict the test images), e.g. in
   ``AppConfig.ready()``::

       from projects import demo
       demo.register_step(train_demo_model)

   A step is ``fn(*, project, users, log) -> None`` (``users`` by role name,
   ``log(line)`` prints) and must be safe to run twice (check before you do).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from django.contrib.auth import get_user_model
from django.db import transaction

from projects.models import Membership, Project

DEMO_SLUG = "demo"
DEMO_USERS = (("admin", Membership.Role.ADMIN), ("annotator", Membership.Role.ANNOTATOR), ("inspector", Membership.Role.INSPECTOR))

DemoStep = Callable[..., None]
demo_steps: list[DemoStep] = []
# ``fn(*, project, actor, folder: Path) -> dict`` importing an MVTec-layout folder
# (``images_created`` and ``polygons`` in the summary); set by the annotations app.
demo_data_source: Callable[..., dict] | None = None


# Fills the rail demo project (``fn(*, project, actor, seed) -> {"images", "with_rails"}``); the
# annotations app registers it, as it does the data source above.
demo_rail_source: Callable[..., dict] | None = None


def register_rail_source(fn: Callable[..., dict]) -> Callable[..., dict]:
    global demo_rail_source
    demo_rail_source = fn
    return fn


def register_data_source(fn: Callable[..., dict]) -> Callable[..., dict]:
    global demo_data_source
    if demo_data_source is not None and demo_data_source is not fn:
        raise ValueError(f"a demo data source is already registered: {demo_data_source!r}")
    demo_data_source = fn
    return fn


def register_step(fn: DemoStep) -> DemoStep:
    if fn in demo_steps:
        raise ValueError(f"{fn!r} is already a demo step")
    demo_steps.append(fn)
    return fn


def demo_password(username: str) -> str:
    return f"{username}-demo"


def demo_users_ensure() -> dict[str, object]:
    """The three demo users by role name, (re)setting their demo passwords."""
    User = get_user_model()
    users = {}
    for username, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@demo.invalid"})
        user.is_active = True
        user.is_staff = user.is_superuser = role == Membership.Role.ADMIN
        user.set_password(demo_password(username))
        user.save()
        users[str(role)] = user
    return users


def demo_project_ensure(
    *, users: dict[str, object], data: Path | None = None, log: Callable[[str], None] = print,
    n_train: int = 24, n_test_normal: int = 6, n_test_anomalous: int = 9, size: int = 128, seed: int = 0,
    n_val_normal: int = 8, n_val_anomalous: int = 3,
) -> Project:
    """The demo project with its members and images; images are imported only while it has none.

    Generated images also fill a val split (``n_val_*`` more normal and annotated anomalous
    images): a training calibrates its thresholds there, the region one F1-optimal on the
    annotated pixels, never on the test images it is measured on."""
    if demo_data_source is None:
        raise RuntimeError("no demo data source registered (the annotations app registers one)")
    admin = users["admin"]
    with transaction.atomic():
        project, created = Project.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={"name": "Demo: textured surfaces" if data is None else f"Demo: {Path(data).name}",
                      "description": "Built by `make demo`.", "created_by": admin},
        )
        for role, user in users.items():
            Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    if project.images.exists():
        log(f"project {project.slug!r} already has {project.images.count()} images; keeping them")
        return project
    if data is not None:
        log(f"importing {data} (MVTec AD layout) ...")
        summary = demo_data_source(project=project, folder=Path(data), actor=admin)
    else:
        from ml.data.synthetic import write_synthetic_mvtec

        log("generating synthetic images (textured surfaces, some with defects) ...")
        with tempfile.TemporaryDirectory(prefix="demo-data-") as folder:
            write_synthetic_mvtec(folder, n_train=n_train, n_test_normal=n_test_normal + n_val_normal,
                                  n_test_anomalous=n_test_anomalous + n_val_anomalous, size=size, seed=seed)
            summary = demo_data_source(project=project, folder=Path(folder), actor=admin)
        _move_to_val(project, {"normal": n_val_normal, "anomalous": n_val_anomalous})
    log(f"imported {summary['images_created']} images, {summary['polygons']} polygons")
    return project


def demo_rail_project_ensure(*, users: dict[str, object], log: Callable[[str], None] = print, seed: int = 0) -> Project:
    """``DEMO_KIND=rail``: a rail project of generated 512x256 track scenes, filled by the registered
    :data:`demo_rail_source` (the annotations app: normal train scenes, a third with their rails
    drawn as "rail" polygons, normal and obstacle test scenes with the obstacles outlined).
    Images are added only while it has none."""
    from projects import hooks

    if demo_rail_source is None:
        raise RuntimeError("no demo rail source is registered (the annotations app registers one in its ready())")
    admin = users["admin"]
    with transaction.atomic():
        project, created = Project.objects.get_or_create(
            slug=DEMO_SLUG + "-rail",
            defaults={"name": "Demo: rail tracks", "kind": Project.Kind.RAIL, "description": "Built by `DEMO_KIND=rail make demo`.", "created_by": admin},
        )
        for role, user in users.items():
            Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
        if created:
            hooks.emit_project_created(project=project, actor=admin)
    if project.images.exists():
        log(f"project {project.slug!r} already has {project.images.count()} images; keeping them")
        return project
    log("generating synthetic rail scenes (rails, sleepers, curves, switches, weather; some with obstacles) ...")
    summary = demo_rail_source(project=project, actor=admin, seed=seed)
    log(f"added {summary['images']} rail scenes, rails drawn on {summary['with_rails']} of them")
    return project


def demo_build(*, data: Path | None = None, log: Callable[[str], None] = print, kind: str = "unsupervised", **sizes) -> tuple[Project, dict]:
    """Users, project (``kind="rail"``: the rail demo), then the registered steps."""
    users = demo_users_ensure()
    if kind == "rail":
        project = demo_rail_project_ensure(users=users, log=log)
    else:
        project = demo_project_ensure(users=users, data=data, log=log, **sizes)
    for step in demo_steps:
        step(project=project, users=users, log=log)
    return project, users


def _move_to_val(project: Project, counts: dict[str, int]) -> None:
    """The last generated ``counts[state]`` test images of each state become val images
    (by the generator's number, so anomalous ones cover every defect kind)."""
    from projects.models import Image

    def number(image) -> int:
        digits = Path(image.original_name).stem.rsplit("_", 1)[-1]
        return int(digits) if digits.isdigit() else -1

    for state, n in counts.items():
        if n <= 0:
            continue
        images = sorted(Image.objects.filter(project=project, split=Image.Split.TEST, state=state), key=number)
        Image.objects.filter(pk__in=[image.pk for image in images[-n:]]).update(split=Image.Split.VAL)

"""A ``road-scene`` project made of ``ml.data.scenes`` images, labelled through the real services:
classes sky / building / road (and ``object``, the unknown one, when asked), polygons traced from
each scene's class-index mask. Shared by the unit, integration and e2e tests."""
from __future__ import annotations

import numpy as np

from ml.data.scenes import generate_scenes
from ml.formats import encode_png, mask_to_polygons

CLASS_NAMES = ("sky", "building", "road", "object")


def scene_polygons(classes: np.ndarray, class_ids: dict[int, int]) -> list[dict]:
    """Polygons (with holes) of every class index in ``class_ids`` (index -> LabelClass pk)."""
    polygons = []
    for index, pk in class_ids.items():
        for region in mask_to_polygons(classes == index):
            polygons.append({"outer": region.outer, "holes": region.holes, "label_class": pk})
    return polygons


def road_scene_project(*, project, actor, splits: dict[str, int], with_object: bool = True, size: int = 64, seed: int = 0):
    """Turn ``project`` into a road-scene project with ``splits`` (split -> number of scenes) of
    labelled scenes. Returns ``{"classes": {name: LabelClass}, "images": [...], "scenes": [...]}``."""
    from annotations.services import annotations_replace, label_class_create
    from projects.models import Project
    from projects.services import image_upload

    project.kind = Project.Kind.ROAD_SCENE
    project.save(update_fields=["kind"])
    names = CLASS_NAMES if with_object else CLASS_NAMES[:3]
    classes = {name: label_class_create(project=project, name=name, actor=actor) for name in names}
    class_ids = {c.index: c.pk for c in classes.values()}
    images, scenes = [], []
    offset = 0
    for split, n in splits.items():
        batch = generate_scenes(n, height=size, width=size, seed=seed + offset, object_share=0.5 if with_object else 0.0)
        offset += 1
        files = [(f"{split}_{s.name}.png", encode_png(s.image)) for s in batch]
        created = image_upload(project=project, files=files, uploaded_by=actor, split=split, state="unlabeled").created
        for image, scene in zip(created, batch):
            annotations_replace(image=image, polygons=scene_polygons(scene.classes, class_ids), expected_version=0, actor=actor)
        images.extend(created)
        scenes.extend(batch)
    return {"classes": classes, "images": images, "scenes": scenes}

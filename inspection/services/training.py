"""Training: validate a request, freeze a dataset snapshot, fit a pipeline, store a model version."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Q

from inspection.models import DatasetSnapshot, ModelVersion
from inspection.services.data import class_mask_array, image_array, mask_array
from inspection.services.evaluation import _plain as json_safe
from inspection.services.evaluation import evaluate_model, evaluation_set
from inspection.services.limits import within_time_limit
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.jobs import JobContext, job_create, run_job
from projects.models import Image, Job, Project

TRAINING_TASK = "inspection.tasks.train_model"
# The stages a pipeline's fit reports, with rough relative durations on CPU: they share the
# job's one progress bar with loading and evaluation. "" holds the default for other pipelines.
FIT_STAGES: dict[str, dict[str, float]] = {
    "patchcore": {"features": 10, "coreset": 10, "calibrate": 4},
    "dfr": {"features": 3, "train": 25, "calibrate": 2},
    "unet": {"prepare": 1, "train": 25, "calibrate": 2},
    "": {"fitting": 20, "train": 20, "calibrate": 2},
}
LABELLED = (Image.State.NORMAL, Image.State.ANOMALOUS)


def pipeline_describe(name: str) -> dict[str, Any]:
    """Name, supervision and config schema of a pipeline; 400 listing the known ones if unknown."""
    from ml import registry

    try:
        return registry.describe(name)
    except registry.UnknownPipeline as exc:
        raise ApplicationError(str(exc), details={"key": "pipeline", "known": registry.names()}) from None


def pipeline_config_validate(name: str, config: Any, preset: str | None = None) -> dict[str, Any]:
    """The config of ``preset`` with ``config`` on top and defaults filled in; 400 naming the bad key."""
    from ml import registry
    from ml.config import ConfigError

    try:
        validated = registry.validate_config(name, config, preset)
    except ConfigError as exc:
        key = exc.key if exc.key in ("config", "preset") else f"config.{exc.key}"
        raise ApplicationError(f"{key}: {exc.message}", details={"key": key}) from None
    return _weights_inside_folder(validated)


def _weights_inside_folder(config: dict[str, Any]) -> dict[str, Any]:
    """A ``weights_path`` must name a file in INSPECTION_WEIGHTS_DIR; it is stored resolved, so the
    worker loads exactly the checked file. Outside, missing and not-a-file get one message (no oracle)."""
    from ml.components.weights import WeightsPathRefused, weights_file_in

    if not config.get("weights_path"):
        return config
    try:
        path = weights_file_in(settings.INSPECTION_WEIGHTS_DIR, config["weights_path"])
    except WeightsPathRefused as exc:
        raise ApplicationError(f"config.weights_path: {exc}", details={"key": "config.weights_path"}) from None
    return {**config, "weights_path": str(path)}


def _has_mask():
    return Q(annotation_set__isnull=False) & ~Q(annotation_set__mask="")


def _has_class_mask():
    return Q(annotation_set__isnull=False) & ~Q(annotation_set__class_mask="")


def semantic_config_defaults(project: Project) -> dict[str, Any]:
    """``num_classes`` / ``void_index`` / ``unknown_classes`` of a semantic pipeline from the
    project's label classes (used for keys the request leaves out): the classes are
    0..highest non-void index, void is the ``void`` class's index (255 without one), and
    no class is held out as unknown unless the request names some."""
    from annotations.services import project_void_index

    void_index = project_void_index(project)
    indices = [i for i in project.label_classes.values_list("index", flat=True) if i != void_index]
    return {"num_classes": (max(indices) + 1) if indices else 0, "void_index": void_index, "unknown_classes": []}


def training_images(project: Project, supervision: str) -> dict[str, Any]:
    """Querysets of what a training of ``supervision`` kind would use now.

    ``train``: normal images of the train split, plus (supervised) anomalous
    train images whose annotations give a mask. ``calibration``: labelled images
    of the val split, handed to ``fit`` to calibrate the threshold (without them
    a pipeline calibrates on its training images). ``evaluation``: labelled
    images of the test split, for the metrics; the val images when the test
    split has none (the metrics then share images with the calibration).
    """
    images = Image.objects.filter(project=project)
    if supervision == "semantic":
        # Road scenes learn from class-index masks, whatever the image's normal/anomalous state.
        with_classes = images.filter(_has_class_mask())
        train = with_classes.filter(split=Image.Split.TRAIN)
        calibration = with_classes.filter(split=Image.Split.VAL)
        evaluation = with_classes.filter(split=Image.Split.TEST)
        if not evaluation.exists():
            evaluation = calibration
        return {"normal_train": train.none(), "masked_train": train, "train": train,
                "calibration": calibration, "evaluation": evaluation}
    normal_train = images.filter(split=Image.Split.TRAIN, state=Image.State.NORMAL)
    masked_train = images.filter(split=Image.Split.TRAIN, state=Image.State.ANOMALOUS).filter(_has_mask())
    train = normal_train | masked_train if supervision == "supervised" else normal_train
    calibration = images.filter(split=Image.Split.VAL, state__in=LABELLED)
    evaluation = images.filter(split=Image.Split.TEST, state__in=LABELLED)
    if not evaluation.exists():
        evaluation = calibration
    return {
        "normal_train": normal_train, "masked_train": masked_train, "train": train,
        "calibration": calibration, "evaluation": evaluation,
    }


def _class_masked(queryset, class_masks: tuple[str, ...] | list[str]):
    """Images of ``queryset`` with at least one polygon of each of the label classes ``class_masks``."""
    for name in class_masks:
        queryset = queryset.filter(annotation_set__annotations__label_class__name=name)
    return queryset.distinct()


def training_data_check(project: Project, supervision: str, class_masks: tuple[str, ...] | list[str] = ()) -> None:
    """Refuse (400, with the reason) a training that has nothing to learn from.

    ``class_masks``: label classes the pipeline learns from besides normal images (the rail
    pipeline: "rail"); at least one normal train image must carry polygons of them.
    """
    sets = training_images(project, supervision)
    if class_masks:
        names = ", ".join(repr(n) for n in class_masks)
        missing = []
        if not sets["normal_train"].exists():
            missing.append("normal images in the train split (mark some train images as normal)")
        if not _class_masked(sets["normal_train"], class_masks).exists():
            missing.append(f"{names} polygons on some normal train images (draw the rails on them)")
        if missing:
            raise ApplicationError(
                f"this pipeline learns from {names} masks and normal images; missing: " + "; ".join(missing),
                details={"reason": "no_class_masks", "class_masks": list(class_masks), "missing": missing},
            )
    if supervision == "semantic":
        if not sets["train"].exists():
            raise ApplicationError(
                "no train images with class masks: a semantic pipeline learns from class-index masks, which "
                "a road-scene project's polygons with classes give; draw or import labelled road scenes in the "
                "train split first" + ("" if project.kind == Project.Kind.ROAD_SCENE else
                                       f" (this project is of kind {project.kind!r}, not 'road-scene')"),
                details={"reason": "no_class_masks"},
            )
    elif supervision == "supervised":
        if not sets["masked_train"].exists():
            raise ApplicationError(
                "no annotated anomalous images in the train split: a supervised pipeline learns from masks; "
                "annotate some anomalous train images first",
                details={"reason": "no_masks"},
            )
    elif not sets["normal_train"].exists():
        raise ApplicationError(
            "no normal images in the train split: mark some train images as normal first",
            details={"reason": "no_normal_train_images"},
        )


def residual_model_resolve(*, project: Project, config: dict[str, Any], vae_model_version: int | None) -> ModelVersion | None:
    """The ``vae`` model version whose residual a ``unet`` with ``input = "image+residual"`` reads
    (thesis 4.1.1); None when the config asks for no residual. 400 naming the problem otherwise:
    no version chosen, a version that is missing or belongs to another project (the same answer, so
    other projects' ids are not revealed), a version of another pipeline, or a file path in
    ``config.vae_model`` (the platform never reads server paths from a request)."""
    wants_residual = config.get("input") == "image+residual"
    if config.get("vae_model") is not None:
        raise ApplicationError(
            "config.vae_model: file paths are not accepted here; choose one of the project's vae model versions (vae_model_version)",
            details={"key": "config.vae_model"},
        )
    if not wants_residual:
        if vae_model_version is not None:
            raise ApplicationError(
                "vae_model_version: only used by a unet with input 'image+residual'", details={"key": "vae_model_version"}
            )
        return None
    if vae_model_version is None:
        raise ApplicationError(
            "vae_model_version: input 'image+residual' needs one of this project's vae model versions; train a vae first",
            details={"key": "vae_model_version", "reason": "no_vae_model_version"},
        )
    model_version = ModelVersion.objects.filter(pk=vae_model_version, project=project).first()
    if model_version is None:
        raise ApplicationError(
            f"vae_model_version: {vae_model_version} is not a model version of this project", details={"key": "vae_model_version"}
        )
    if model_version.pipeline != "vae":
        raise ApplicationError(
            f"vae_model_version: model version {model_version.number} is a {model_version.pipeline!r} model, not a 'vae'",
            details={"key": "vae_model_version"},
        )
    return model_version


def training_job_start(
    *,
    project: Project,
    user,
    pipeline: str,
    config: Any = None,
    preset: str | None = None,
    activate: bool = False,
    reason: str = "manual",
    broker: str = "required",
    vae_model_version: int | None = None,
) -> Job:
    """Validate and queue a training job. Nothing is created when the request is refused.

    ``activate``: make the new model version active when training succeeds
    (the demo and the retraining policy's ``auto_activate`` use it). ``broker``: see
    ``projects.jobs.job_create``.
    ``vae_model_version``: id of one of the project's ``vae`` model versions,
    the residual model of a ``unet`` with ``input = "image+residual"``.
    """
    description = pipeline_describe(pipeline)
    if description["supervision"] == "semantic":
        # The class defaults come from the labelled data, so the data is checked first.
        training_data_check(project, description["supervision"])
        if config is None or isinstance(config, dict):
            config = {**semantic_config_defaults(project), **(config or {})}
    validated = pipeline_config_validate(pipeline, config, preset)
    residual = residual_model_resolve(project=project, config=validated, vae_model_version=vae_model_version)
    class_masks = list(description.get("required_class_masks") or [])
    training_data_check(project, description["supervision"], class_masks)
    params = {
        "pipeline": pipeline,
        "preset": preset or "default",
        "config": validated,
        "supervision": description["supervision"],
        "class_masks": class_masks,
        "activate": bool(activate),
        "reason": reason,
    }
    if residual is not None:
        params["vae_model_version"] = residual.pk
        params["vae_model_version_number"] = residual.number
    return job_create(
        kind=Job.Kind.TRAINING, project=project, requested_by=user, task_name=TRAINING_TASK, params=params, broker=broker
    )


def dataset_snapshot_take(
    *, project: Project, supervision: str, job: Job | None = None, class_masks: tuple[str, ...] | list[str] = ()
) -> DatasetSnapshot:
    """Freeze which images (with split, state and annotation version) a training uses."""
    training_data_check(project, supervision, class_masks)
    sets = training_images(project, supervision)
    entries = []
    for role in ("train", "calibration", "evaluation"):
        queryset = sets[role]
        for image in queryset.select_related("annotation_set").order_by("pk"):
            annotation_set = getattr(image, "annotation_set", None)
            entries.append(
                {
                    "id": image.pk,
                    "sha256": image.sha256,
                    "split": image.split,
                    "state": image.state,
                    "annotation_version": annotation_set.version if annotation_set else None,
                    "role": role,
                }
            )
    summary: dict[str, int] = {}
    for entry in entries:
        key = f"{entry['role']}_{entry['state']}"
        summary[key] = summary.get(key, 0) + 1
    return DatasetSnapshot.objects.create(project=project, job=job, images=entries, summary=summary)


def training_job_run(*, job_id: int) -> Job | None:
    """Body of the ``train_model`` task."""
    return run_job(job_id, within_time_limit(_train, settings.INSPECTION_TRAINING_SOFT_TIME_LIMIT))


def _samples(entries: list[dict], ctx: JobContext, stage: str, class_masks: list[str] | None = None,
             unknown_classes: list[int] | None = None):
    """Samples of the snapshot entries. With ``class_masks`` (label classes a pipeline learns, e.g.
    "rail") each carries those classes' masks, and its anomaly mask leaves their polygons out. With
    ``unknown_classes`` (semantic trainings) each carries its class-index mask, and its anomaly mask /
    label mark the unknown classes' pixels."""
    from annotations.services import anomaly_mask_render, class_mask_render
    from ml.base import Sample

    images = Image.objects.select_related("annotation_set").in_bulk([e["id"] for e in entries])
    samples = []
    for i, entry in enumerate(entries):
        ctx.progress(stage, i / max(len(entries), 1))
        image = images.get(entry["id"])
        if image is None:
            raise ApplicationError(f"image {entry['id']} was deleted while the training started")
        pixels = image_array(image)
        if unknown_classes is not None:
            classes = class_mask_array(image)
            if classes is None:
                raise ApplicationError(f"image {image.original_name!r} lost its class mask while the training started")
            anomalous = np.isin(classes, unknown_classes).astype(np.uint8)
            samples.append(Sample(image=pixels, mask=anomalous, label=int(anomalous.any()), name=image.original_name,
                                  classes=classes))
            continue
        if entry["state"] == Image.State.NORMAL:
            label, mask = 0, np.zeros(pixels.shape[:2], dtype=np.uint8)
        elif class_masks:
            label, mask = 1, anomaly_mask_render(image=image, exclude=class_masks)
        else:
            label, mask = 1, mask_array(image)
        extra = None
        if class_masks:
            extra = {name: m for name in class_masks if (m := class_mask_render(image=image, class_name=name)) is not None} or None
        samples.append(Sample(image=pixels, mask=mask, label=label, name=image.original_name, class_masks=extra))
    return samples


def _defect_kinds(project: Project, entries: list[dict], samples: list) -> list[str | None]:
    """Each evaluation image's defect kind: the label class of its polygons when the project has
    several classes and the image one of them, else its MVTec defect folder (``test/<kind>/``)."""
    from annotations.models import Annotation, LabelClass
    from ml.metrics.per_kind import kind_from_path

    by_image: dict[int, set[str]] = {}
    if LabelClass.objects.filter(project=project).count() > 1:
        rows = Annotation.objects.filter(annotation_set__image_id__in=[e["id"] for e in entries])
        for image_id, name in rows.values_list("annotation_set__image_id", "label_class__name"):
            by_image.setdefault(image_id, set()).add(name)
    kinds = []
    for entry, sample in zip(entries, samples):
        names = by_image.get(entry["id"], set())
        kinds.append(next(iter(names)) if len(names) == 1 else kind_from_path(sample.name))
    return kinds


def _train(ctx: JobContext) -> dict[str, Any]:
    from ml import registry

    job = ctx.job
    params = job.params
    ctx.plan({
        "dataset snapshot": 1, "loading train images": 4, "loading validation images": 1, "loading test images": 1,
        **FIT_STAGES.get(params["pipeline"], FIT_STAGES[""]), "evaluating": 6,
    })
    ctx.progress("dataset snapshot", 0.0)
    class_masks = list(params.get("class_masks") or [])
    snapshot = dataset_snapshot_take(project=job.project, supervision=params["supervision"], job=job, class_masks=class_masks)
    ctx.log(f"dataset snapshot {snapshot.pk}: " + ", ".join(f"{k} {v}" for k, v in sorted(snapshot.summary.items())))
    unknown = list(params["config"].get("unknown_classes") or []) if params["supervision"] == "semantic" else None
    train = _samples([e for e in snapshot.images if e["role"] == "train"], ctx, "loading train images", class_masks, unknown)
    calibration = _samples([e for e in snapshot.images if e["role"] == "calibration"], ctx, "loading validation images",
                           class_masks, unknown)
    evaluation_entries = [e for e in snapshot.images if e["role"] == "evaluation"]
    evaluation = _samples(evaluation_entries, ctx, "loading test images", class_masks, unknown)

    pipeline = registry.create(params["pipeline"], params["config"])
    if params.get("vae_model_version"):
        residual = ModelVersion.objects.filter(pk=params["vae_model_version"], project=job.project).first()
        if residual is None:
            raise ApplicationError(f"vae model version {params.get('vae_model_version_number')} was deleted before the training started")
        with residual.artifact.open("rb") as handle:
            pipeline.use_residual_model(registry.load_bytes(handle.read()), f"model version {residual.number}")
        ctx.log(f"residual input from vae model version {residual.number}")
    ctx.log(
        f"fitting {params['pipeline']} on {len(train)} image(s); threshold calibrated on "
        + (f"{len(calibration)} validation image(s)" if calibration else "the training images (no labelled val split)")
    )
    if not calibration and params["supervision"] == "semantic" and len(train) < 8:
        # Too few scenes to hold some back: the semantic pipeline validates and calibrates on its
        # training scenes, as unsupervised ones do, rather than ending without a threshold.
        calibration = train
        ctx.log("no val-split scenes and too few to hold back: validating on the training scenes")
    pipeline.fit(train, calibration or None, progress=ctx.progress)

    outcome = evaluate_model(pipeline, train=train, evaluation=evaluation, config=params["config"], progress=ctx.progress,
                             log=ctx.log, kinds=_defect_kinds(job.project, evaluation_entries, evaluation))
    pipeline.threshold = outcome.threshold
    pipeline.region_threshold = outcome.region_threshold
    pipeline.normalization = outcome.normalization
    artifact = _artifact_bytes(pipeline)
    # A cancel that arrived during evaluation still wins: no model version.
    ctx.check_cancelled()
    training_record = dict(pipeline.meta.get("training") or {})
    for key in ("residual_model", "reconstruction"):  # which vae fed a unet; a vae's Table 5.1 measures
        if key in pipeline.meta:
            training_record[key] = pipeline.meta[key]
    model_version = _model_version_create(
        job=job, snapshot=snapshot, artifact=artifact, outcome=outcome, pipeline_training=training_record
    )
    ctx.log(
        f"model version {model_version.number}: image threshold {outcome.threshold:.6g} ({outcome.policy}), "
        f"region threshold {outcome.region_threshold:.6g} ({outcome.region_policy})"
    )
    if params.get("activate"):
        from inspection.services.model_versions import model_version_activate

        model_version_activate(model_version=model_version, user=job.requested_by, broker="outbox")
        ctx.log(f"model version {model_version.number} activated")
    return {
        "model_version": model_version.pk, "number": model_version.number, "threshold": outcome.threshold,
        "region_threshold": outcome.region_threshold, "metrics": outcome.metrics,
    }


def _artifact_bytes(pipeline) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(pipeline.to_artifact(), buffer)
    return buffer.getvalue()


def _model_version_create(
    *, job: Job, snapshot: DatasetSnapshot, artifact: bytes, outcome, pipeline_training: dict | None = None
) -> ModelVersion:
    params = job.params
    with transaction.atomic():
        # The project row lock makes version numbers gap-free and unique under concurrent trainings.
        project = Project.objects.select_for_update().get(pk=job.project_id)
        number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        model_version = ModelVersion(
            project=project,
            number=number,
            pipeline=params["pipeline"],
            preset=params.get("preset", "default"),
            config=params["config"],
            training=json_safe(pipeline_training or {}),
            threshold=outcome.threshold,
            threshold_policy=outcome.policy,
            region_threshold=outcome.region_threshold,
            region_threshold_policy=outcome.region_policy,
            evaluation=evaluation_set([e for e in snapshot.images if e["role"] == "evaluation"], source="training"),
            normalization=outcome.normalization,
            metrics=outcome.metrics,
            curves=outcome.curves,
            snapshot=snapshot,
            job=job,
            created_by=job.requested_by,
        )
        # Content-addressed key: a retried job writes the same blob, not a second one.
        model_version.artifact.save("model.pt", ContentFile(artifact, name="model.pt"), save=False)
        model_version.save()
        audit_record(
            job.requested_by,
            "model_version.create",
            model_version,
            details={"number": number, "pipeline": params["pipeline"], "job": job.pk, "reason": params.get("reason", "manual")},
        )
    return model_version

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
from inspection.services.data import image_array, mask_array
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


def training_data_check(project: Project, supervision: str) -> None:
    """Refuse (400, with the reason) a training that has nothing to learn from."""
    sets = training_images(project, supervision)
    if supervision == "supervised":
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
) -> Job:
    """Validate and queue a training job. Nothing is created when the request is refused.

    ``activate``: make the new model version active when training succeeds
    (the demo and the retraining policy's ``auto_activate`` use it). ``broker``: see
    ``projects.jobs.job_create``.
    """
    description = pipeline_describe(pipeline)
    validated = pipeline_config_validate(pipeline, config, preset)
    training_data_check(project, description["supervision"])
    params = {
        "pipeline": pipeline,
        "preset": preset or "default",
        "config": validated,
        "supervision": description["supervision"],
        "activate": bool(activate),
        "reason": reason,
    }
    return job_create(
        kind=Job.Kind.TRAINING, project=project, requested_by=user, task_name=TRAINING_TASK, params=params, broker=broker
    )


def dataset_snapshot_take(*, project: Project, supervision: str, job: Job | None = None) -> DatasetSnapshot:
    """Freeze which images (with split, state and annotation version) a training uses."""
    training_data_check(project, supervision)
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


def _samples(entries: list[dict], ctx: JobContext, stage: str):
    from ml.base import Sample

    images = Image.objects.select_related("annotation_set").in_bulk([e["id"] for e in entries])
    samples = []
    for i, entry in enumerate(entries):
        ctx.progress(stage, i / max(len(entries), 1))
        image = images.get(entry["id"])
        if image is None:
            raise ApplicationError(f"image {entry['id']} was deleted while the training started")
        pixels = image_array(image)
        if entry["state"] == Image.State.NORMAL:
            label, mask = 0, np.zeros(pixels.shape[:2], dtype=np.uint8)
        else:
            label, mask = 1, mask_array(image)
        samples.append(Sample(image=pixels, mask=mask, label=label, name=image.original_name))
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
    snapshot = dataset_snapshot_take(project=job.project, supervision=params["supervision"], job=job)
    ctx.log(f"dataset snapshot {snapshot.pk}: " + ", ".join(f"{k} {v}" for k, v in sorted(snapshot.summary.items())))
    train = _samples([e for e in snapshot.images if e["role"] == "train"], ctx, "loading train images")
    calibration = _samples([e for e in snapshot.images if e["role"] == "calibration"], ctx, "loading validation images")
    evaluation_entries = [e for e in snapshot.images if e["role"] == "evaluation"]
    evaluation = _samples(evaluation_entries, ctx, "loading test images")

    pipeline = registry.create(params["pipeline"], params["config"])
    ctx.log(
        f"fitting {params['pipeline']} on {len(train)} image(s); threshold calibrated on "
        + (f"{len(calibration)} validation image(s)" if calibration else "the training images (no labelled val split)")
    )
    pipeline.fit(train, calibration or None, progress=ctx.progress)

    outcome = evaluate_model(pipeline, train=train, evaluation=evaluation, config=params["config"], progress=ctx.progress,
                             log=ctx.log, kinds=_defect_kinds(job.project, evaluation_entries, evaluation))
    pipeline.threshold = outcome.threshold
    pipeline.region_threshold = outcome.region_threshold
    pipeline.normalization = outcome.normalization
    artifact = _artifact_bytes(pipeline)
    # A cancel that arrived during evaluation still wins: no model version.
    ctx.check_cancelled()
    model_version = _model_version_create(
        job=job, snapshot=snapshot, artifact=artifact, outcome=outcome, pipeline_training=pipeline.meta.get("training") or {}
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

"""Automatic retraining: after K new verdicts or annotation saves, at most once per cooldown."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from inspection.models import ModelVersion, Review, RetrainPolicy
from projects.audit import audit_record
from projects.errors import ApplicationError
from projects.jobs import jobs_live_q
from projects.models import Job, Project

logger = logging.getLogger(__name__)

POLICY_FIELDS = ("enabled", "min_new_labels", "cooldown_minutes", "auto_activate")


def retrain_policy_get(*, project: Project) -> RetrainPolicy:
    """The project's policy (off until an admin changes it)."""
    policy, _ = RetrainPolicy.objects.get_or_create(project=project)
    return policy


def retrain_policy_update(*, project: Project, user, data: dict[str, Any]) -> RetrainPolicy:
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise ApplicationError(f"{unknown[0]}: unknown key; known keys are {', '.join(POLICY_FIELDS)}", details={"key": unknown[0]})
    with transaction.atomic():
        policy, _ = RetrainPolicy.objects.select_for_update().get_or_create(project=project)
        before = {f: getattr(policy, f) for f in POLICY_FIELDS}
        for field, value in data.items():
            setattr(policy, field, value)
        if policy.min_new_labels < 1:
            raise ApplicationError("min_new_labels: must be at least 1", details={"key": "min_new_labels"})
        policy.updated_by = user
        policy.save()
        audit_record(user, "retrain_policy.update", policy, project=project, details={"from": before, "to": data})
    return policy


def labels_since_last_training(*, project: Project) -> int:
    """New verdicts plus images whose annotations were saved since the last training job was queued."""
    from annotations.models import AnnotationSet

    last = Job.objects.filter(project=project, kind=Job.Kind.TRAINING).order_by("-created_at").values_list("created_at", flat=True).first()
    reviews = Review.objects.filter(prediction__image__project=project)
    # Drafts made from predictions are a side effect of a verdict, already counted once.
    annotations = AnnotationSet.objects.filter(image__project=project, version__gt=0, is_draft=False)
    if last is not None:
        reviews = reviews.filter(created_at__gt=last)
        annotations = annotations.filter(updated_at__gt=last)
    return reviews.count() + annotations.count()


def retrain_check(*, project: Project) -> Job | None:
    """Start a training with the active model's pipeline and config when the policy says so.

    Runs after every verdict and from the periodic beat task (which also catches
    annotation saves). Returns the started job, or None.
    """
    from inspection.services.training import training_job_start

    with transaction.atomic():
        policy = RetrainPolicy.objects.select_for_update().filter(project=project, enabled=True).first()
        if policy is None:
            return None
        now = timezone.now()
        if policy.last_triggered_at and now - policy.last_triggered_at < timedelta(minutes=policy.cooldown_minutes):
            return None
        # Only a live training holds the next one back: a queued job past its limit or a running
        # one whose worker died (the sweeps will fail both) must not block retraining forever.
        if Job.objects.filter(jobs_live_q(), project=project, kind=Job.Kind.TRAINING).exists():
            return None
        active = ModelVersion.objects.filter(project=project, is_active=True).first()
        if active is None:
            return None
        count = labels_since_last_training(project=project)
        if count < policy.min_new_labels:
            return None
        # A unet on the image+residual input retrains on the same vae model version.
        residual = (active.job.params or {}).get("vae_model_version") if active.job_id else None
        try:
            job = training_job_start(
                project=project, user=None, pipeline=active.pipeline, config=active.config,
                activate=policy.auto_activate, reason="retrain policy", vae_model_version=residual,
                # After a verdict or from beat: the verdict must not fail because the queue is down.
                broker="outbox",
            )
        except ApplicationError as exc:
            # The data no longer allows a training (e.g. every normal image was removed): say so, retry after cooldown.
            logger.warning("retraining of project %s not started: %s", project.pk, exc.message)
            policy.last_triggered_at = now
            policy.save(update_fields=["last_triggered_at"])
            return None
        policy.last_triggered_at = now
        policy.save(update_fields=["last_triggered_at"])
        audit_record(None, "retrain_policy.trigger", policy, project=project, details={"job": job.pk, "new_labels": count})
    return job


def retrain_check_all() -> int:
    """Beat task body: check every project with an enabled policy; returns how many trainings started."""
    started = 0
    for project in Project.objects.filter(retrain_policy__enabled=True):
        started += retrain_check(project=project) is not None
    return started

"""The top floor: dataset snapshots, model versions, predictions, reviews, retraining policies.

Training and inference jobs themselves are rows of the generic ``projects.Job``
(kind ``training`` / ``inference``); the rows here are what those jobs leave behind.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.models import Image, Job, Project, blob_storage


class DatasetSnapshot(models.Model):
    """Which images (with split, state and annotation version) a training job used.

    ``images`` is a list of ``{"id", "sha256", "split", "state", "annotation_version", "role"}``
    where ``role`` is ``train`` (fitted on), ``calibration`` (val split: threshold) or
    ``evaluation`` (test split, else the val split: metrics). An image may appear in two roles.
    Frozen when the training job starts, so later edits never change what a model
    version claims to have been trained on.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_snapshots")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="dataset_snapshot")
    images = models.JSONField(default=list)
    summary = models.JSONField(default=dict, help_text="Counts per role and state, for display.")
    created_at = models.DateTimeField(auto_now_add=True)


class ModelVersion(models.Model):
    """A trained model of a project: the artifact plus everything needed to judge and use it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3... per project, in creation order.")
    pipeline = models.CharField(max_length=50)
    preset = models.CharField(max_length=50, default="default", help_text="The named preset the config started from.")
    config = models.JSONField(default=dict)
    artifact = models.FileField(storage=blob_storage, max_length=100)
    threshold = models.FloatField(help_text="Image threshold: an image whose score is above it is flagged.")
    threshold_policy = models.CharField(max_length=200, blank=True, help_text="How the threshold was chosen.")
    region_threshold = models.FloatField(
        help_text="Region threshold: the anomaly-map pixels above it are outlined as the predicted region."
    )
    region_threshold_policy = models.CharField(max_length=200, blank=True, help_text="How the region threshold was chosen.")
    normalization = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=dict, blank=True, help_text="ROC, PR and score histograms for the UI.")
    evaluation = models.JSONField(
        default=dict,
        blank=True,
        help_text="The image set the metrics were computed on: {key, count, images, source, at}; "
        "two versions are comparable when their keys are equal.",
    )
    training = models.JSONField(
        default=dict, blank=True,
        help_text="What the training loop did: steps, epochs, seconds, why it stopped, the best validation "
        "measure and the training / validation curves.",
    )
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # One model version per training job: a task that runs twice cannot add a second one.
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version")
    is_active = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="model_version_number_per_project"),
            # The database itself guarantees at most one active model per project,
            # whatever two racing activations try.
            models.UniqueConstraint(fields=["project"], condition=Q(is_active=True), name="one_active_model_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number} ({self.pipeline})"


class Prediction(models.Model):
    """What one model version says about one image; computed once, a re-run overwrites it.

    ``heatmap`` is an 8-bit grayscale PNG at image resolution; pixel value ``p``
    stands for the anomaly map value ``heatmap_min + p / 255 * (heatmap_max - heatmap_min)``,
    so the browser can redraw the region for any threshold. ``class_map`` (semantic
    models only): the predicted class-index map, an 8-bit grey PNG whose pixel values
    are label class indices.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    score = models.FloatField()
    heatmap = models.FileField(storage=blob_storage, max_length=100)
    heatmap_min = models.FloatField()
    heatmap_max = models.FloatField()
    class_map = models.FileField(storage=blob_storage, max_length=100, blank=True)
    polygons = models.JSONField(default=list, blank=True, help_text="Predicted region (map > threshold) as polygons.")
    boxes = models.JSONField(
        default=list, blank=True,
        help_text="Boxes a pipeline marks (the rail pipeline: anomalous patches), [{x, y, width, height, score, ...}] in image pixels.",
    )
    class_mask = models.FileField(
        storage=blob_storage, max_length=100, blank=True,
        help_text="A class mask a pipeline finds (the rail pipeline: the rails), PNG 0/255 at image resolution.",
    )
    flagged = models.BooleanField(default=False)
    # The newest review's verdict, "" while unreviewed. Kept by the review service (a verdict sets
    # it, an undo puts back the one before) so that the review queue filters and sorts on plain
    # indexed columns instead of a subquery over every review of the model version.
    verdict = models.CharField(max_length=20, blank=True, default="", help_text="The newest review's verdict; '' while unreviewed.")
    # Several reviewers on one queue: "next item" hands each an unreviewed prediction that nobody
    # else holds, for REVIEW_CLAIM_SECONDS; a verdict releases it.
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_until = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_image_and_model")]
        indexes = [
            models.Index(fields=["model_version", "flagged", "score"]),
            # The review queue: a version's unreviewed (verdict "") predictions, flagged first, by score.
            models.Index(fields=["model_version", "verdict", "flagged", "score"], name="prediction_review_queue"),
        ]


class Review(models.Model):
    """An inspector's verdict on a prediction. Several may exist; the newest counts."""

    class Verdict(models.TextChoices):
        ANOMALY = "anomaly"
        NORMAL = "normal"
        UNSURE = "unsure"

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    effect = models.JSONField(
        default=dict, blank=True,
        help_text="What the verdict changed on the image ({state, split, draft_version}), or 'flagged' with the "
        "reason it changed nothing; 'before' holds the image's state and split before it, so an undo puts back "
        "only what changed.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class RetrainPolicy(models.Model):
    """Automatic retraining of a project: off unless an admin turns it on."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="retrain_policy")
    enabled = models.BooleanField(default=False)
    min_new_labels = models.PositiveIntegerField(
        default=20, help_text="Retrain after this many new verdicts or annotation saves since the last training."
    )
    cooldown_minutes = models.PositiveIntegerField(default=60, help_text="At most one automatic training per cooldown.")
    auto_activate = models.BooleanField(default=False, help_text="Activate the retrained model version when it succeeds.")
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

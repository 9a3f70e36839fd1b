"""The ground floor: blobs, projects and their members, images, jobs, the audit log."""
from __future__ import annotations

from django.conf import settings
from django.core.files.storage import storages
from django.db import models


def blob_storage():
    """Storage holding image, mask, heatmap and artifact bytes (settings.STORAGES['blobs'])."""
    return storages["blobs"]


class Blob(models.Model):
    """Content-addressed bytes: the key is the sha256 of the content, stored once.

    Small content sits in ``data``; content over BLOB_CHUNK_BYTES (an export archive,
    a large model) is split over ``chunks`` BlobChunk rows, so that neither writing nor
    reading it holds the whole of it in memory or in one field.
    """

    sha256 = models.CharField(max_length=64, primary_key=True)
    data = models.BinaryField()
    size = models.BigIntegerField()
    chunks = models.PositiveIntegerField(default=0, help_text="0: the bytes are in data; else the number of BlobChunk rows.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blob {self.sha256[:12]} ({self.size} bytes)"


class BlobChunk(models.Model):
    """One piece of a large blob, in order of ``index``."""

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "index"], name="one_chunk_per_blob_and_index")]


class Project(models.Model):
    class Kind(models.TextChoices):
        UNSUPERVISED = "unsupervised"
        SUPERVISED = "supervised"
        RAIL = "rail"
        ROAD_SCENE = "road-scene"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.UNSUPERVISED)
    image_size = models.PositiveIntegerField(default=256)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        INSPECTOR = "inspector"
        ANNOTATOR = "annotator"
        ADMIN = "admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]


class Image(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"
        UNASSIGNED = "unassigned"

    class State(models.TextChoices):
        UNLABELED = "unlabeled"
        NORMAL = "normal"
        ANOMALOUS = "anomalous"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(storage=blob_storage, max_length=100)
    thumbnail = models.FileField(
        storage=blob_storage, max_length=100, blank=True, help_text="Small JPEG made on first request (a blob key)."
    )
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    content_type = models.CharField(max_length=50, default="image/png")
    split = models.CharField(max_length=20, choices=Split.choices, default=Split.UNASSIGNED)
    state = models.CharField(max_length=20, choices=State.choices, default=State.UNLABELED)
    original_name = models.CharField(max_length=500)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="image_once_per_project")]
        indexes = [models.Index(fields=["project", "split", "state"])]

    def __str__(self) -> str:
        return self.original_name


class Job(models.Model):
    """A background job is a row (STYLE.md "Jobs are rows"): the UI reads its state from here."""

    class Kind(models.TextChoices):
        IMPORT = "import"
        EXPORT = "export"
        TRAINING = "training"
        INFERENCE = "inference"
        EVALUATION = "evaluation"
        REDRAW = "redraw"  # predicted regions redrawn after a threshold change

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)
    log = models.JSONField(default=list, blank=True)
    metrics_history = models.JSONField(
        default=list, blank=True, help_text="Points reported with progress (e.g. loss per epoch), for live curves."
    )
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    input_file = models.FileField(storage=blob_storage, max_length=100, blank=True)
    output_file = models.FileField(storage=blob_storage, max_length=100, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    task_name = models.CharField(max_length=200, blank=True, help_text="The Celery task that runs the job.")
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task was handed to the broker; empty: not yet (the outbox sweep sends it)."
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "heartbeat_at"]), models.Index(fields=["project", "kind", "created_at"])]

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class AuditEvent(models.Model):
    """Who did what to which object, and when."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    verb = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

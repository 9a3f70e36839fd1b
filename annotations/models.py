"""Label classes, polygon annotations and the raster masks derived from them."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from projects.models import Image, Project, blob_storage


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#ff0000")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="label_class_name_per_project")]

    def __str__(self) -> str:
        return self.name


class AnnotationSet(models.Model):
    """All polygons of one image, versioned as a whole.

    ``version`` grows by one on every save; a save must carry the version it
    read (a stale one is refused). ``mask`` is the raster mask derived from
    the polygons (PNG, 0/255), regenerated on each save; empty when the image
    has no polygons.
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="annotation_set")
    version = models.PositiveIntegerField(default=0)
    mask = models.FileField(storage=blob_storage, max_length=100, blank=True)
    is_draft = models.BooleanField(default=False, help_text="Created from a model's prediction, not yet refined by a person.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


class Annotation(models.Model):
    """One polygon region: ``polygon = {"outer": [[x, y], ...], "holes": [[[x, y], ...], ...]}``
    in image pixel coordinates."""

    class Source(models.TextChoices):
        MANUAL = "manual"
        IMPORT = "import"
        PREDICTION = "prediction"

    annotation_set = models.ForeignKey(AnnotationSet, on_delete=models.CASCADE, related_name="annotations")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="annotations")
    polygon = models.JSONField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField(help_text="Version of the annotation set this polygon was saved in.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

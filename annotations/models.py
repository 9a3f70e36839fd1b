"""Label classes, polygon annotations and the raster masks derived from them."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from projects.models import Image, Project, blob_storage


VOID_NAME = "void"
VOID_INDEX = 255


class LabelClass(models.Model):
    """A class of a project's polygons. ``index`` is the value its pixels take in the class-index
    mask of a road-scene project (stable: never renumbered); a class named ``void`` stands for
    unlabelled pixels, which are void where nothing is drawn."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#ff0000")
    index = models.PositiveSmallIntegerField(help_text="Pixel value in class-index masks (0..255), unique per project.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_class_name_per_project"),
            models.UniqueConstraint(fields=["project", "index"], name="label_class_index_per_project"),
            models.CheckConstraint(condition=models.Q(index__lte=255), name="label_class_index_fits_a_byte"),
        ]
        ordering = ["index"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Every class needs an index whatever path creates it (services pass one; fixtures may not).
        if self.index is None:
            self.index = next_class_index(self.project_id, self.name)
        super().save(*args, **kwargs)


def next_class_index(project_id: int, name: str) -> int:
    """The index a new class gets: 255 for ``void`` when free, else one past the highest index below 255."""
    taken = set(LabelClass.objects.filter(project_id=project_id).values_list("index", flat=True))
    if name.strip().lower() == VOID_NAME and VOID_INDEX not in taken:
        return VOID_INDEX
    below = [i for i in taken if i < VOID_INDEX]
    candidate = max(below) + 1 if below else 0
    if candidate >= VOID_INDEX:
        free = [i for i in range(VOID_INDEX) if i not in taken]
        if not free:
            raise ValueError("a project has at most 255 label classes")
        candidate = free[0]
    return candidate


class AnnotationSet(models.Model):
    """All polygons of one image, versioned as a whole.

    ``version`` grows by one on every save; a save must carry the version it
    read (a stale one is refused). ``mask`` is the raster mask derived from
    the polygons (PNG, 0/255), regenerated on each save; empty when the image
    has no polygons. ``class_mask`` (road-scene projects only): the class-index
    mask (PNG, one byte per pixel: the class ``index`` of the polygon drawn last
    over the pixel, the void index where nothing is drawn).
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="annotation_set")
    version = models.PositiveIntegerField(default=0)
    mask = models.FileField(storage=blob_storage, max_length=100, blank=True)
    class_mask = models.FileField(storage=blob_storage, max_length=100, blank=True)
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

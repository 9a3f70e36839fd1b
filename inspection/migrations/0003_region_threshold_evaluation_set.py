"""Two thresholds per model version (image and region), the evaluation set its metrics
were computed on. Existing versions outline regions at their image threshold, as they did
before. (What a verdict changed, Review.effect, comes from 0003_review_effect.)"""

import hashlib
import json

from django.db import migrations, models
from django.db.models import F


def region_is_image_threshold(apps, schema_editor):
    ModelVersion = apps.get_model("inspection", "ModelVersion")
    ModelVersion.objects.update(region_threshold=F("threshold"), region_threshold_policy="the image threshold")


def evaluation_set_from_snapshot(apps, schema_editor):
    """The evaluation set of existing versions, from their snapshot's evaluation images (the
    same key as inspection.services.evaluation.evaluation_set, written out here as of now)."""
    ModelVersion = apps.get_model("inspection", "ModelVersion")
    for version in ModelVersion.objects.exclude(snapshot=None).select_related("snapshot"):
        pairs = sorted((int(e["id"]), e.get("annotation_version")) for e in version.snapshot.images if e.get("role") == "evaluation")
        key = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]
        version.evaluation = {
            "key": key, "count": len(pairs), "images": [i for i, _ in pairs], "source": "training",
            "at": version.created_at.isoformat(),
        }
        version.save(update_fields=["evaluation"])


class Migration(migrations.Migration):

    dependencies = [
        ("inspection", "0002_threshold_policy_text"),
        ("projects", "0004_job_kind_evaluation"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="region_threshold",
            field=models.FloatField(null=True),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="region_threshold_policy",
            field=models.CharField(blank=True, help_text="How the region threshold was chosen.", max_length=200),
        ),
        migrations.RunPython(region_is_image_threshold, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="modelversion",
            name="region_threshold",
            field=models.FloatField(
                help_text="Region threshold: the anomaly-map pixels above it are outlined as the predicted region."
            ),
        ),
        migrations.AlterField(
            model_name="modelversion",
            name="threshold",
            field=models.FloatField(help_text="Image threshold: an image whose score is above it is flagged."),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="evaluation",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The image set the metrics were computed on: {key, count, images, source, at}; "
                "two versions are comparable when their keys are equal.",
            ),
        ),
        migrations.RunPython(evaluation_set_from_snapshot, migrations.RunPython.noop),
    ]

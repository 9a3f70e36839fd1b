"""Jobs of kind ``evaluation``: a model version scored again on the current test split."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0003_image_thumbnail"),
    ]

    operations = [
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("import", "Import"),
                    ("export", "Export"),
                    ("training", "Training"),
                    ("inference", "Inference"),
                    ("evaluation", "Evaluation"),
                ],
                max_length=20,
            ),
        ),
    ]

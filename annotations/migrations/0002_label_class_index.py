"""Label classes get a stable index (existing ones numbered per project in creation order) and
annotation sets a class-index mask (road-scene projects)."""
import projects.models
from django.db import migrations, models


def number_in_creation_order(apps, schema_editor):
    LabelClass = apps.get_model("annotations", "LabelClass")
    project_ids = LabelClass.objects.values_list("project_id", flat=True).distinct()
    for project_id in project_ids:
        for index, label_class in enumerate(LabelClass.objects.filter(project_id=project_id).order_by("pk")):
            label_class.index = index
            label_class.save(update_fields=["index"])


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="labelclass", name="index",
            field=models.PositiveSmallIntegerField(null=True, help_text="Pixel value in class-index masks (0..255), unique per project."),
        ),
        migrations.RunPython(number_in_creation_order, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="labelclass", name="index",
            field=models.PositiveSmallIntegerField(help_text="Pixel value in class-index masks (0..255), unique per project."),
        ),
        migrations.AlterModelOptions(name="labelclass", options={"ordering": ["index"]}),
        migrations.AddConstraint(
            model_name="labelclass",
            constraint=models.UniqueConstraint(fields=("project", "index"), name="label_class_index_per_project"),
        ),
        migrations.AddConstraint(
            model_name="labelclass",
            constraint=models.CheckConstraint(condition=models.Q(index__lte=255), name="label_class_index_fits_a_byte"),
        ),
        migrations.AddField(
            model_name="annotationset", name="class_mask",
            field=models.FileField(blank=True, storage=projects.models.blob_storage, upload_to=""),
        ),
    ]

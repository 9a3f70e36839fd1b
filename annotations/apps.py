from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the import/export tasks in every process, not only in workers
        # (Celery's autodiscovery is lazy): eager mode looks them up by name.
        from annotations import tasks  # noqa: F401
        from annotations.services import label_classes_for_new_project
        from projects import hooks

        if label_classes_for_new_project not in hooks.project_created:
            hooks.register_project_created(label_classes_for_new_project)
        from annotations.importers import demo_data_import, demo_rail_import
        from projects import demo

        # `make demo` fills its project through our importer (projects never imports us).
        demo.register_data_source(demo_data_import)
        demo.register_rail_source(demo_rail_import)

from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the import/export tasks in every process, not only in workers
        # (Celery's autodiscovery is lazy): eager mode looks them up by name.
        from annotations import tasks  # noqa: F401
        from annotations.importers import demo_data_import
        from projects import demo

        # `make demo` fills its project through our importer (projects never imports us).
        demo.register_data_source(demo_data_import)

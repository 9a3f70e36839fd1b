from django.apps import AppConfig


class InspectionConfig(AppConfig):
    name = "inspection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotations import assist
        from inspection.demo import train_demo_model
        from inspection.selectors import active_heat
        from inspection.services.inference import inference_on_upload
        from projects import demo, hooks

        # Register the training/inference tasks in every process (Celery's
        # autodiscovery is lazy): eager mode looks them up by name.
        from inspection import tasks  # noqa: F401

        # New uploads of a project with an active model are predicted automatically.
        if inference_on_upload not in hooks.images_uploaded:
            hooks.register_images_uploaded(inference_on_upload)
        # The annotate page's box tool refines GrabCut with the active model's heatmap.
        if active_heat not in assist.heatmap_providers:
            assist.register_heatmap_provider(active_heat)
        # `make demo` trains and activates a model so the review queue is filled when the browser opens.
        if train_demo_model not in demo.demo_steps:
            demo.register_step(train_demo_model)

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        # A signal, against the house style, because a password can change outside our services
        # (the admin site, `manage.py changepassword`, `set_password` in a shell): every such change
        # must revoke the user's API tokens, as POST /api/auth/password/ does.
        pre_save.connect(_revoke_tokens_on_password_change, sender=get_user_model(), dispatch_uid="projects.revoke_tokens")


def _revoke_tokens_on_password_change(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        from projects.api.tokens import tokens_revoke

        tokens_revoke(user=instance)

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_server_functions(*, using: str, **_) -> None:
    from annotator.sql import server_functions_install

    server_functions_install(using=using)


class AnnotatorConfig(AppConfig):
    name = "annotator"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Preference collection"

    def ready(self) -> None:
        # After the tables they use exist and whenever the code that migrates changes them.
        post_migrate.connect(_install_server_functions, sender=self, dispatch_uid="annotator-server-functions")

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # Registers the job kinds this app's tasks handle.
        from registry import tasks  # noqa: F401

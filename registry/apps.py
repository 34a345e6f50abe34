from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        # Registers the job kinds this app's tasks handle, and the database checks.
        from registry import checks, tasks  # noqa: F401

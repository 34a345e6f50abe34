from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        # Registers the job kinds this app's tasks handle.
        from monitoring import tasks  # noqa: F401

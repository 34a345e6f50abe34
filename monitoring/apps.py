from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        # Registers the job kinds this app's tasks handle.
        from monitoring import tasks  # noqa: F401
        from monitoring.health import health_record
        from registry.serving import serving_observer_register

        # Operational health: every served request is counted (in memory, written off the path).
        serving_observer_register(health_record)

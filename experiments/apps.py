from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"

    def ready(self) -> None:
        # Registers the job kinds this app's tasks handle.
        from experiments import tasks  # noqa: F401

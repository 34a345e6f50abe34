from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        from django.urls import reverse

        from core.links import PageLink, page_link_register
        from registry import checks, tasks  # noqa: F401 - registers job kinds and database checks

        # The run page lists the versions registered from the run, beside its model files.
        page_link_register("run-panels", PageLink(
            "Model versions", lambda run: reverse("registry:run-panel", args=[run.pk]), order=20))
        page_link_register("project", PageLink(
            "Models", lambda project: reverse("registry:models", args=[project.slug]), order=10))

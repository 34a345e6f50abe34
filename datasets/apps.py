from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"

    def ready(self) -> None:
        from django.urls import reverse

        from core.links import PageLink, page_link_register
        from datasets import tasks  # noqa: F401 - registers the dataset job kinds

        page_link_register("project", PageLink(
            "Datasets", lambda project: reverse("datasets:list", args=[project.slug]), order=20))

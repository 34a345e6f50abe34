from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        from django.urls import reverse

        from accounts.models import Role
        from core.links import PageLink, page_link_register
        from training import tasks  # noqa: F401 - registers the training job kind

        # The run page shows the run's datasets, the spec it was trained from and its plots.
        page_link_register("run-panels", PageLink(
            "Training", lambda run: reverse("training:run-panel", args=[run.pk]), order=10))
        sweeps = PageLink("Sweeps", lambda project: reverse("training:sweeps", args=[project.slug]), order=30)
        page_link_register("project", sweeps)
        page_link_register("datasets", sweeps)
        page_link_register("datasets", PageLink(
            "Train a model", lambda project: reverse("training:training-new", args=[project.slug]),
            min_role=Role.EDITOR, primary=True, order=40))
        page_link_register("dataset-version", PageLink(
            "Train on this version",
            lambda version: (reverse("training:training-new", args=[version.dataset.project.slug])
                             + f"?dataset_version={version.pk}"),
            min_role=Role.EDITOR, primary=True, order=40))

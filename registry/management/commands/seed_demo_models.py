"""The registry's part of the demo: a model with two versions, their checks, and an alias.

``seed_demo`` calls this after it made the demo runs (the registry is a layer above the
runs, so its part of the story is a command of its own). Version 1 comes from the run with
the strongest regularisation, version 2 from the run the example script's defaults
reproduce; ``staging`` points at version 2, so its page's "Try it" form answers at once.
Running it again adds nothing.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Project
from experiments.models import Run
from registry import registration, services
from registry.models import ModelVersion, RegisteredModel, VersionStatus

DEMO_SLUG = "demo"
MODEL_NAME = "breast-cancer-classifier"
EXPERIMENT = "breast-cancer-sgd"
VERSIONS = ("sgd alpha=0.01 lr=0.01", "sgd alpha=0.0001 lr=0.01")
ALIAS = "staging"


class Command(BaseCommand):
    help = "Register the demo project's model (two checked versions and an alias) once."

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="admin", help="Username the versions are registered as.")

    def handle(self, *args, owner: str, **options):
        user = get_user_model().objects.filter(username=owner).first()
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if user is None or project is None:
            raise CommandError("Run seed_demo first: it makes the demo project and its runs.")
        if RegisteredModel.objects.filter(project=project, name=MODEL_NAME).exists():
            self.stdout.write(f"Demo model '{MODEL_NAME}' already there.")
            return
        versions: list[ModelVersion] = []
        for run_name in VERSIONS:
            run = Run.objects.filter(project=project, experiment__name=EXPERIMENT, name=run_name).first()
            if run is None or not run.artifacts.filter(path="model/model.skops").exists():
                raise CommandError(f"The demo run '{run_name}' with its model is missing; run seed_demo.")
            version = registration.model_version_create(
                project=project, model_name=MODEL_NAME, run=run, artifact_path="model", user=user,
                description=f"Logistic regression by SGD ({run_name}) on the breast-cancer data.",
            )
            # Checked here rather than waiting for the worker, so the alias can point at a ready
            # version on the first start; the queued check then finds the job done.
            registration.model_version_check(job_id=version.check_job_id)
            version.refresh_from_db()
            if version.status != VersionStatus.READY:
                raise CommandError(
                    f"Demo version {version.version} failed its checks: {version.status_message}")
            versions.append(version)
        services.alias_set(model=versions[-1].model, alias=ALIAS, version=versions[-1], user=user,
                           via="seed_demo")
        self.stdout.write(f"Demo model '{MODEL_NAME}': versions 1 and 2, checked; '{ALIAS}' -> v2.")

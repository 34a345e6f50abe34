"""What MLflow keeps that Steward's own tables have no column for: experiment tags and the
deleted (restorable) state of experiments and runs. Everything else lives in Steward's tables."""

from django.db import models
from django.utils import timezone

from experiments.models import Experiment, Run


class ExperimentState(models.Model):
    experiment = models.OneToOneField(
        Experiment, primary_key=True, on_delete=models.CASCADE, related_name="mlflow_state"
    )
    tags = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class DeletedRun(models.Model):
    """A run MLflow's ``delete_run`` put aside: hidden from MLflow's searches until restored."""

    run = models.OneToOneField(Run, primary_key=True, on_delete=models.CASCADE, related_name="mlflow_deleted")
    deleted_at = models.DateTimeField(default=timezone.now)

"""What MLflow keeps that Steward's own tables have no column for: experiment tags, logged models
and model version tags. Everything else lives in Steward's tables; a deleted run or experiment is
in Steward's own trash (``lifecycle`` on the run and the experiment)."""

from django.db import models
from django.utils import timezone

from experiments.models import Experiment, Run


class ExperimentState(models.Model):
    experiment = models.OneToOneField(
        Experiment, primary_key=True, on_delete=models.CASCADE, related_name="mlflow_state"
    )
    tags = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class LoggedModel(models.Model):
    """An MLflow 3 logged model. Its files are artifacts of its source run, under
    ``models/<id>/``, so Steward's run pages and registry see them like any other artifact."""

    id = models.CharField(primary_key=True, max_length=40)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="mlflow_models")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="mlflow_models")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=30, choices=LoggedModelStatus.choices,
                              default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["experiment", "name"])]

    @property
    def artifact_path(self) -> str:
        return f"models/{self.id}"


class VersionTags(models.Model):
    """MLflow's free-form tags on a model version (Steward's versions have none of their own)."""

    version = models.OneToOneField(
        "registry.ModelVersion", primary_key=True, on_delete=models.CASCADE, related_name="mlflow_tags"
    )
    tags = models.JSONField(default=dict, blank=True)

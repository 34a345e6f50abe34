"""Training specs recorded with their runs, and sweeps of training jobs.

The tables keep their ``experiments_*`` names (``db_table``): moving the models here moved no data.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project
from experiments.models import Experiment, Run


class SweepStatus(models.TextChoices):
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Sweep(models.Model):
    """A grid or random search: one training job per trial, at most ``parallelism`` at once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sweeps")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="sweeps")
    name = models.CharField(max_length=200, blank=True)
    base_spec = models.JSONField()
    # {"strategy": "grid"|"random", "space": {param: [values] | {"low","high","log","int"}},
    #  "n_trials": n, "seed": s}
    search = models.JSONField()
    objective = models.CharField(max_length=250)
    goal = models.CharField(max_length=3, default="max")
    parallelism = models.PositiveSmallIntegerField(default=2)
    status = models.CharField(max_length=10, choices=SweepStatus.choices, default=SweepStatus.RUNNING)
    best_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "experiments_sweep"
        ordering = ["-created_at"]


class SweepTrial(models.Model):
    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trials")
    index = models.PositiveIntegerField()
    params = models.JSONField()
    job = models.OneToOneField(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="sweep_trial"
    )

    class Meta:
        db_table = "experiments_sweeptrial"
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "index"], name="sweep_trial_unique_index")
        ]


class TrainingRun(models.Model):
    """The spec a run was trained from, so it can be shown and re-run."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="training")
    spec = models.JSONField()
    # The feature list the worker used, so a re-run trains on the same columns
    # even if column roles were edited since.
    resolved_features = models.JSONField(default=list)
    job = models.OneToOneField(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    sweep = models.ForeignKey(
        Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    rerun_of = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "experiments_trainingrun"

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project

KEY_MAX_LENGTH = 250
PARAM_VALUE_MAX_LENGTH = 6000
TAG_VALUE_MAX_LENGTH = 8000
ARTIFACT_PATH_MAX_LENGTH = 1024
# MLflow's own limit, so an experiment named by an MLflow script fits.
EXPERIMENT_NAME_MAX_LENGTH = 500


class Lifecycle(models.TextChoices):
    """MLflow's lifecycle stage: a deleted run or experiment is in the trash until restored or purged."""

    ACTIVE = "active"
    DELETED = "deleted"


class Experiment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    # Denormalised from the experiment: every permission check and search starts here.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="runs"
    )
    notes = models.TextField(blank=True)
    git_commit = models.CharField(max_length=64, blank=True)
    git_branch = models.CharField(max_length=250, blank=True)
    git_dirty = models.BooleanField(null=True)
    entry_point = models.CharField(max_length=1000, blank=True)
    host = models.CharField(max_length=250, blank=True)
    python_version = models.CharField(max_length=50, blank=True)
    packages = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # A nested run's parent (a grid search's candidates, an MLflow-style nested run).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # A run deleted with its experiment carries the experiment's deleted_at, so restoring the
    # experiment brings back exactly those runs and not ones deleted on their own before.
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            models.Index(fields=["experiment", "-start_time"]),
            models.Index(fields=["project", "-start_time"]),
            models.Index(fields=["lifecycle", "deleted_at"], name="run_trash"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def duration(self):
        if self.end_time is None:
            return None
        return self.end_time - self.start_time


class Param(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.TextField()

    class Meta:
        # No index on value: values reach 6000 characters, past what a btree row may hold.
        # Filters on params are answered per run through the (run, key) constraint.
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_key")]


class Tag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="tag_unique_key")]


class Metric(models.Model):
    """One logged point. Append-only: rows are inserted, never updated.

    NaN is stored as NULL (SQLite cannot hold NaN); +/-inf are stored as they are.
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: metric_run_key_step_ts starts with run and serves every
    # lookup by run, and each extra index is written for every point. No database
    # constraint either, checked per point: the batch's LatestMetric and
    # MetricRollup rows check the run (migration 0006).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points", db_index=False,
                            db_constraint=False)
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.FloatField(null=True)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()

    class Meta:
        # A history is read by (run, key) in (step, timestamp, id) order: this one
        # index serves that read in order and holds the value, so the read never
        # sorts and never visits the table.
        indexes = [
            models.Index(fields=["run", "key", "step", "timestamp", "id", "value"],
                         name="metric_run_key_step_ts"),
        ]


class LatestMetric(models.Model):
    """The value with the highest (step, timestamp) per run and key: what search and sort read."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False)
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.FloatField(null=True)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique_key")
        ]
        indexes = [models.Index(fields=["key", "value"], name="latest_metric_key_value")]


class MetricRollup(models.Model):
    """Per run, key and block of ROLLUP_BLOCK consecutive steps: the lowest and the
    highest value with their steps and times.

    Kept current at ingestion (one small upsert per block a batch touches), so a
    series of millions of points downsamples by reading thousands of rows.
    NaN (stored as NULL) is counted but never a block's min or max.
    """

    ROLLUP_BLOCK = 64

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    block = models.BigIntegerField()
    count = models.BigIntegerField()
    min_value = models.FloatField(null=True)
    min_step = models.BigIntegerField(null=True)
    min_timestamp = models.BigIntegerField(null=True)
    max_value = models.FloatField(null=True)
    max_step = models.BigIntegerField(null=True)
    max_timestamp = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "key", "block"], name="metric_rollup_unique_block")
        ]


class Artifact(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=ARTIFACT_PATH_MAX_LENGTH)
    storage_name = models.CharField(max_length=1200)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The file holds values of PII columns (a model fitted on them): only roles that may see
    # PII download or preview it. Never cleared, so a re-upload cannot unlock the path.
    pii = models.BooleanField(default=False)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["run", "path"], name="artifact_unique_path")
        ]

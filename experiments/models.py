import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project

KEY_MAX_LENGTH = 250
PARAM_VALUE_MAX_LENGTH = 6000
TAG_VALUE_MAX_LENGTH = 8000
ARTIFACT_PATH_MAX_LENGTH = 1024


class Experiment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

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

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            models.Index(fields=["experiment", "-start_time"]),
            models.Index(fields=["project", "-start_time"]),
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
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_key")]
        indexes = [models.Index(fields=["key", "value"], name="param_key_value")]


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
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.FloatField(null=True)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step"], name="metric_run_key_step")]


class LatestMetric(models.Model):
    """The value with the highest (step, timestamp) per run and key: what search and sort read."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.FloatField(null=True)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique_key")
        ]
        indexes = [models.Index(fields=["key", "value"], name="latest_metric_key_value")]


class Artifact(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=ARTIFACT_PATH_MAX_LENGTH)
    storage_name = models.CharField(max_length=1200)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["run", "path"], name="artifact_unique_path")
        ]


class IdempotentRequest(models.Model):
    """The stored answer to a request sent with an Idempotency-Key header."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    scope = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_unique")
        ]


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(models.Model):
    """A background job as a row, so the UI can show progress and the API can poll it."""

    FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    kind = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

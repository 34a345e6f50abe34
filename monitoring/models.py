"""Monitors of served models, the labels that arrive later, drift/performance reports and alerts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project
from core.models import Job
from datasets.models import DatasetVersion
from registry.models import ModelVersion, RegisteredModel

# Defaults of Monitor.thresholds; a monitor stores only what it overrides.
DEFAULT_THRESHOLDS = {
    # A feature drifts when its test is significant at this level...
    "significance": 0.05,
    # ...and its effect passes a floor, so a huge sample does not flag a trivial shift.
    "psi": 0.1,
    "wasserstein": 0.1,
    # The dataset drifts when at least this share of the watched features drift.
    "drift_share": 0.5,
    # Fewer current rows than this: no verdict, the report says so.
    "min_samples": 100,
    # A performance alert when a metric is this much (absolute) worse than at registration.
    "metric_drop": 0.05,
    # Page-Hinkley on the error stream: tolerated change (delta) and alarm level (lambda).
    "ph_delta": 0.005,
    "ph_lambda": 50.0,
}


class RetrainData(models.TextChoices):
    """What a retraining trains on."""

    NEWEST_DATASET_VERSION = "newest_dataset_version", "The newest version of the champion's dataset"
    REFERENCE_PLUS_LABELLED = (
        "reference_plus_labelled",
        "The reference plus the window's labelled predictions, as a new dataset version",
    )


class Monitor(models.Model):
    """Watches what the version behind (model, alias) is asked and how it does."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="monitors")
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="monitors")
    alias = models.CharField(max_length=64)
    # None: the training dataset version of the version the alias points at, whole.
    reference_dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Empty: the served version's signature columns.
    features = models.JSONField(default=list, blank=True)
    # Window: the last N hours, or the last N predictions; neither = everything since the
    # monitor was created, up to WINDOW_MAX_ROWS (the newest rows).
    window_hours = models.PositiveIntegerField(null=True, blank=True)
    window_predictions = models.PositiveIntegerField(null=True, blank=True)
    # Run every N minutes through django-celery-beat; None = only when asked.
    schedule_minutes = models.PositiveIntegerField(null=True, blank=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    thresholds = models.JSONField(default=dict, blank=True)
    alert_emails = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=128, blank=True)
    cooldown_minutes = models.PositiveIntegerField(default=60)
    retrain_on_alert = models.BooleanField(default=False)
    retrain_data = models.CharField(
        max_length=30, choices=RetrainData.choices, default=RetrainData.NEWEST_DATASET_VERSION
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model__name", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="monitor_unique_model_alias")
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"

    def threshold(self, name: str) -> float:
        return float((self.thresholds or {}).get(name, DEFAULT_THRESHOLDS[name]))


class Label(models.Model):
    """The true outcome of one served prediction, identified by (request_id, row)."""

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="labels")
    request_id = models.UUIDField()
    row = models.PositiveIntegerField()
    label = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["monitor", "request_id", "row"], name="label_unique_prediction")
        ]


class ReportStatus(models.TextChoices):
    OK = "ok"
    DRIFT = "drift"
    INSUFFICIENT = "insufficient_data"


class MonitorReport(models.Model):
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="reports")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The versions the alias pointed at during the window (the newest first).
    model_versions = models.JSONField(default=list)
    reference_dataset_version = models.ForeignKey(
        DatasetVersion, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.OK)
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField(null=True)
    reference_rows = models.BigIntegerField(default=0)
    current_rows = models.BigIntegerField(default=0)
    dataset_drift = models.BooleanField(default=False)
    drift_share = models.FloatField(default=0.0)
    # [{"feature", "kind", "test", "statistic", "p_value", "psi", "wasserstein", "unseen_share", "drifted"}]
    features = models.JSONField(default=list)
    prediction = models.JSONField(default=dict)
    data_quality = models.JSONField(default=dict)
    # feature -> {"edges" | "labels", "reference", "current"} (shares), to draw one against the other
    histograms = models.JSONField(default=dict)
    # {"labelled", "metrics", "baseline", "drops", "concept_drift": {...}} or {} without labels
    performance = models.JSONField(default=dict)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]


class AlertKind(models.TextChoices):
    DRIFT = "drift"
    PERFORMANCE = "performance"
    RETRAINING = "retraining"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(models.Model):
    """One condition of one monitor; a repeat updates the live alert instead of opening another."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    status = models.CharField(max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    report = models.ForeignKey(MonitorReport, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="alerts")
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # At most one live (open or acknowledged) alert per monitor and kind: the de-duplication.
            models.UniqueConstraint(fields=["monitor", "kind"], condition=~models.Q(status="resolved"),
                                    name="alert_one_live_per_kind")
        ]


class DeliveryChannel(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"


class AlertDelivery(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    target = models.CharField(max_length=500)
    event = models.CharField(max_length=50)
    delivered = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Retraining(models.Model):
    """A retraining a monitor started: the job, and the version it registered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="retrainings")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    champion = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    # The dataset version it wrote (reference plus labelled predictions); None when it trained on
    # an existing version. Kept so a retried job trains on the same data instead of writing another.
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class ServingMinute(models.Model):
    """Operational health of one served version in one minute: requests, rows, refusals,
    failures and a latency histogram (counts per bucket of monitoring.health.LATENCY_EDGES)."""

    id = models.BigAutoField(primary_key=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    latency = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_version", "minute"], name="serving_minute_unique")
        ]

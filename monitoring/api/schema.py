"""What the monitoring API answers, for the OpenAPI schema only (``monitor_output``, ``report_output``...)."""

from __future__ import annotations

from rest_framework import serializers

from monitoring.models import RetrainData


class MonitorOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField()
    model = serializers.CharField()
    alias = serializers.CharField()
    reference_dataset_version = serializers.IntegerField(allow_null=True)
    features = serializers.ListField(child=serializers.CharField())
    schedule_minutes = serializers.IntegerField(allow_null=True)
    window_hours = serializers.IntegerField(allow_null=True)
    window_predictions = serializers.IntegerField(allow_null=True)
    thresholds = serializers.DictField(child=serializers.FloatField(), help_text="Every threshold in force.")
    alert_emails = serializers.ListField(child=serializers.CharField())
    webhook_url = serializers.CharField()
    cooldown_minutes = serializers.IntegerField()
    retrain_on_alert = serializers.BooleanField()
    retrain_data = serializers.ChoiceField(
        choices=RetrainData.values,
        help_text="What a retraining trains on: the newest version of the champion's dataset, or the "
        "reference plus the window's labelled predictions written as a new dataset version.",
    )
    created_at = serializers.DateTimeField(allow_null=True)


class MonitorListOut(serializers.Serializer):
    monitors = MonitorOut(many=True)


class ReportBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor_id = serializers.IntegerField()
    status = serializers.CharField()
    model_versions = serializers.JSONField()
    reference_dataset_version = serializers.IntegerField(allow_null=True)
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)
    reference_rows = serializers.IntegerField()
    current_rows = serializers.IntegerField()
    dataset_drift = serializers.BooleanField()
    drift_share = serializers.FloatField()
    features = serializers.JSONField(help_text="Per feature: the drift test, its statistic and verdict.")
    prediction = serializers.JSONField()
    data_quality = serializers.JSONField()
    performance = serializers.JSONField()
    seconds = serializers.FloatField()
    created_at = serializers.DateTimeField(allow_null=True)


class ReportOut(ReportBriefOut):
    histograms = serializers.JSONField()


class AlertOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor_id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()
    report_id = serializers.IntegerField(allow_null=True)
    occurrences = serializers.IntegerField()
    opened_at = serializers.DateTimeField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class AlertListOut(serializers.Serializer):
    alerts = AlertOut(many=True)


class MonitorDetailOut(MonitorOut):
    reports = ReportBriefOut(many=True, help_text="The latest 50, without histograms.")
    alerts = AlertOut(many=True, help_text="The latest 50.")


class LabelsLoggedOut(serializers.Serializer):
    labels = serializers.IntegerField()


class PredictionsLoggedOut(serializers.Serializer):
    predictions = serializers.IntegerField(help_text="Stored now.")
    skipped = serializers.IntegerField(help_text="Already in the log under their request id.")
    request_ids = serializers.ListField(child=serializers.CharField())

"""Governance tables. The analyses (fairness audit, explanation) hold one row per model version,
created as soon as the version exists in governance's eyes, so the API can answer 200 with a
status while the job is queued instead of 404."""

from django.db import models

from experiments.models import Job
from registry.models import ModelVersion


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class FairnessReport(models.Model):
    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="fairness_report")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED)
    error = models.TextField(blank=True)
    # {"kind": "training_split" | "dataset_version", "dataset_version_id", "target", "rows", "seed"}
    data_source = models.JSONField(default=dict, blank=True)
    sensitive_features = models.JSONField(default=list, blank=True)
    # "classification" | "regression"
    task = models.CharField(max_length=20, blank=True)
    # [{"feature", "group", "count", "small", "selection_rate", "accuracy", "precision", "recall",
    #   "false_positive_rate", "false_negative_rate", ...}]; "feature" is "a & b" for an intersection
    groups = models.JSONField(default=list, blank=True)
    # {"<feature>": {"demographic_parity_difference", "demographic_parity_ratio",
    #   "equalized_odds_difference", "equalized_odds_ratio", "ci": {...}}}
    summary = models.JSONField(default=dict, blank=True)
    min_group_size = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class Explanation(models.Model):
    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="explanation")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED)
    error = models.TextField(blank=True)
    explainer = models.CharField(max_length=40, blank=True)  # "tree" | "linear" | "permutation"
    output = models.CharField(max_length=20, blank=True)  # "log_odds" | "probability" | "value"
    base_value = models.FloatField(null=True, blank=True)
    global_importance = models.JSONField(default=dict, blank=True)  # {feature: mean |SHAP|}
    # [{"input": {...}, "shap_values": {...}, "prediction": float}]
    rows = models.JSONField(default=list, blank=True)
    beeswarm = models.JSONField(default=dict, blank=True)  # per feature: shap values and scaled inputs
    additivity_ok = models.BooleanField(null=True, blank=True)
    additivity_max_error = models.FloatField(null=True, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    background_size = models.PositiveIntegerField(default=0)
    # The class whose output is explained (classifiers: the last of the model's classes).
    explained_class = models.JSONField(null=True, blank=True)
    # {"kind": "training_split" | "dataset_version" | "input_example", ...} as for fairness reports
    data_source = models.JSONField(default=dict, blank=True)
    # Input rows SHAP hides columns with (Linear, Permutation), kept for per-prediction
    # explanations. Data values: never shown by any page or API.
    background = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

"""Datasets, their immutable versions, validation rules and run lineage.

The tables keep their ``experiments_*`` names (``db_table``): moving the models here moved no data.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Project
from experiments.models import Lifecycle, Run


class ColumnRole(models.TextChoices):
    FEATURE = "feature"
    TARGET = "target"
    SENSITIVE = "sensitive"
    ID = "id"
    TIMESTAMP = "timestamp"
    IGNORE = "ignore"


class DatasetFormat(models.TextChoices):
    CSV = "csv"
    PARQUET = "parquet"


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "experiments_dataset"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    """One immutable file, addressed by its sha256.

    The file, its size, row count and schema never change once stored; only the
    per-column role and PII flag (``columns[i]["role"]``, ``["pii"]``), the
    profile and the latest validation report are written later.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=1200)
    format = models.CharField(max_length=10, choices=DatasetFormat.choices)
    # How a CSV is read back: {"delimiter": ",", "encoding": "utf-8"}.
    read_options = models.JSONField(default=dict, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField()
    row_count = models.BigIntegerField()
    column_count = models.PositiveIntegerField()
    # [{"name", "dtype", "nullable", "null_count", "role", "pii", "single_value"}] in file order.
    columns = models.JSONField(default=list)
    profile = models.JSONField(null=True, blank=True)
    profile_job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    validation = models.JSONField(null=True, blank=True)
    validation_job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "experiments_datasetversion"
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_unique"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="dataset_version_unique_sha"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.version}"

    def column(self, name: str) -> dict | None:
        for col in self.columns:
            if col["name"] == name:
                return col
        return None


class ValidationRuleKind(models.TextChoices):
    NOT_NULL = "not_null"
    RANGE = "range"
    ALLOWED_VALUES = "allowed_values"
    UNIQUE = "unique"
    SCHEMA_UNCHANGED = "schema_unchanged"


class ValidationRule(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=20, choices=ValidationRuleKind.choices)
    column = models.CharField(max_length=500, blank=True)
    # range: {"min": x, "max": y}; allowed_values: {"values": [...]}.
    config = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "experiments_validationrule"
        ordering = ["id"]


class LineageDirection(models.TextChoices):
    INPUT = "input"
    OUTPUT = "output"


class RunDataset(models.Model):
    """Lineage: a run read (input) or produced (output) a dataset version."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_links")
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.CASCADE, related_name="run_links"
    )
    direction = models.CharField(max_length=6, choices=LineageDirection.choices)
    role = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "experiments_rundataset"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "dataset_version", "direction", "role"], name="run_dataset_unique"
            )
        ]

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from accounts.models import Project
from core.models import Job
from datasets.models import DatasetVersion
from experiments.models import Artifact, Run

# \Z, never $: "$" also matches before a final newline, so "champion\n" would pass for a name
# that looks like "champion" everywhere it is shown.
MODEL_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z"
ALIAS_RE = r"^[A-Za-z0-9_-]{1,64}\Z"
DEFAULT_PROTECTED_ALIASES = ["champion", "production"]

model_name_validator = RegexValidator(
    MODEL_NAME_RE, "Use 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit."
)


def default_protected_aliases() -> list[str]:
    return list(DEFAULT_PROTECTED_ALIASES)


class RegisteredModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="registered_models")
    name = models.CharField(max_length=100, validators=[model_name_validator])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.JSONField(default=dict, blank=True)
    # Aliases that move only through an approved promotion, never by hand.
    protected_aliases = models.JSONField(default=default_protected_aliases, blank=True)
    # Prediction logs leave out PII-flagged columns unless this is on.
    log_pii = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="registered_model_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def is_protected(self, alias: str) -> bool:
        return alias in (self.protected_aliases or [])


class VersionStatus(models.TextChoices):
    PENDING_CHECKS = "pending_checks", "pending checks"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


class ModelFormat(models.TextChoices):
    SKOPS = "skops"
    # Stored, never loaded unless an owner trusts the exact sha256.
    PICKLE = "pickle"
    JOBLIB = "joblib"


class OutputKind(models.TextChoices):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Runtime(models.TextChoices):
    NONE = "", "not servable"
    ONNX = "onnx", "ONNX Runtime"
    SKLEARN = "sklearn", "scikit-learn"


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    # The source is always one of Steward's stored artifacts; the run and
    # artifact cannot be deleted while a version points at them.
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="model_versions")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="model_versions")
    # Copied from the artifact at registration: a re-upload of the same path
    # must not change what this version is.
    artifact_path = models.CharField(max_length=1024)
    storage_name = models.CharField(max_length=1200)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    model_format = models.CharField(max_length=10, choices=ModelFormat.choices)
    flavour = models.CharField(max_length=20, default="sklearn")
    # {"columns": [{"name", "dtype", "nullable", "pii"}], "input_mode": "columns"}
    signature = models.JSONField(default=dict, blank=True)
    output_kind = models.CharField(max_length=20, choices=OutputKind.choices, blank=True)
    classes = models.JSONField(default=list, blank=True)
    example = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    training_dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="model_versions"
    )
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.PENDING_CHECKS
    )
    status_message = models.TextField(blank=True)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, blank=True)
    runtime_reason = models.TextField(blank=True)
    onnx_storage_name = models.CharField(max_length=1200, blank=True)
    onnx_sha256 = models.CharField(max_length=64, blank=True)
    onnx_size = models.BigIntegerField(null=True, blank=True)
    # {"rows", "source", "labels_identical", "max_abs_diff", "tolerance"}
    verification = models.JSONField(default=dict, blank=True)
    check_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def is_pickle(self) -> bool:
        return self.model_format in (ModelFormat.PICKLE, ModelFormat.JOBLIB)

    @property
    def columns(self) -> list[dict]:
        return (self.signature or {}).get("columns", [])

    @property
    def holds_pii(self) -> bool:
        """The model file holds values of PII columns: its artifact carries the flag (never cleared)."""
        return self.artifact.pii


class ModelAlias(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="model_alias_unique")]


class AliasEventKind(models.TextChoices):
    SET = "set"
    REMOVED = "removed"
    PROTECTED = "protected"
    UNPROTECTED = "unprotected"


class AliasEvent(models.Model):
    """Append-only history of where each alias pointed, and who moved it how."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=64)
    kind = models.CharField(max_length=12, choices=AliasEventKind.choices, default=AliasEventKind.SET)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "approval:<label>:<pk>" when the move came from an approved promotion.
    via = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "alias", "-created_at"])]


class TrustedModelHash(models.Model):
    """An owner vouched that a pickle/joblib file with this exact sha256 may be loaded."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trusted_model_hashes")
    sha256 = models.CharField(max_length=64)
    trusted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    trusted_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="trusted_model_hash_unique")
        ]


class PredictionLog(models.Model):
    """One served predict request: its rows' inputs and outputs; append-only, written in batches.

    A request's rows share one database row (inputs by column, outputs in row
    order), so a 100-row request costs the database one small compressed
    record instead of a hundred keyed ones. ``row_get`` gives one row back.
    """

    id = models.BigAutoField(primary_key=True)
    # The (version, time) index below serves every lookup by version.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+",
                                      db_index=False)
    request_id = models.UUIDField(default=uuid.uuid4)
    rows = models.PositiveIntegerField(default=1)
    # column name -> one value per row (PII columns left out unless the model logs them)
    inputs = models.JSONField()
    predictions = models.JSONField()  # one per row
    probabilities = models.JSONField(null=True, blank=True)  # one list per row (classifiers)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["model_version", "created_at"], name="prediction_log_version_time"),
            models.Index(fields=["request_id"], name="prediction_log_request"),
        ]

    def row_get(self, row: int) -> dict:
        """One row of the request: ``{"inputs": {column: value}, "prediction", "probabilities"}``."""
        if not 0 <= row < self.rows:
            raise IndexError(row)
        return {
            "inputs": {name: values[row] for name, values in self.inputs.items()},
            "prediction": self.predictions[row],
            "probabilities": None if self.probabilities is None else self.probabilities[row],
        }

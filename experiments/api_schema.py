"""What the tracking, artifact, dataset and training API answer, for the OpenAPI schema only.

Output-only serializers that describe the dicts the views build (``run_output``,
``job_output``, ``version_output``, ...); the views never serialize through them.
Shapes used by more than one endpoint (a job, a run, a dataset version) are
defined once here and shared with the apps above.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _json(**kwargs) -> serializers.JSONField:
    """Free-form JSON as stored (a job's params and result, a profile, a spec...)."""
    return serializers.JSONField(**kwargs)


@extend_schema_field(
    {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
)
class MetricNumberField(serializers.FloatField):
    """A metric value: a number, or NaN/Infinity/-Infinity spelled as a string (JSON has no such numbers)."""


class JobOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    params = _json()
    result = _json(allow_null=True)
    error = serializers.CharField()
    log = serializers.CharField()
    project = serializers.CharField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class JobListOut(serializers.Serializer):
    jobs = JobOut(many=True)


class ExperimentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    lifecycle = serializers.CharField()
    deleted_at = serializers.DateTimeField(allow_null=True)


class RunSourceOut(serializers.Serializer):
    git_commit = serializers.CharField()
    git_branch = serializers.CharField()
    git_dirty = serializers.BooleanField(allow_null=True)
    entry_point = serializers.CharField()
    host = serializers.CharField()
    python_version = serializers.CharField()
    packages = _json()


class LatestMetricOut(serializers.Serializer):
    value = MetricNumberField()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField(help_text="Epoch milliseconds.")


class RunBriefOut(serializers.Serializer):
    """A run without its params, metrics and tags."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    project = serializers.CharField()
    experiment = serializers.CharField()
    experiment_id = serializers.IntegerField()
    status = serializers.CharField()
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    notes = serializers.CharField()
    error = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    parent_run_id = serializers.UUIDField(allow_null=True)
    lifecycle = serializers.CharField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    source = RunSourceOut()


class RunOut(RunBriefOut):
    params = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=LatestMetricOut(), help_text="The latest point of each metric.")
    tags = serializers.DictField(child=serializers.CharField())


class RunSearchOut(serializers.Serializer):
    runs = RunOut(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class BatchCountsOut(serializers.Serializer):
    """How many of each a batch stored."""

    params = serializers.IntegerField()
    metrics = serializers.IntegerField()
    tags = serializers.IntegerField()


class MetricPointOut(serializers.Serializer):
    step = serializers.IntegerField()
    value = MetricNumberField()
    timestamp = serializers.IntegerField()


class MetricHistoryOut(serializers.Serializer):
    key = serializers.CharField()
    total = serializers.IntegerField()
    downsampled = serializers.BooleanField()
    points = MetricPointOut(many=True)


class ArtifactOut(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    content_type = serializers.CharField()
    created_at = serializers.DateTimeField()
    pii = serializers.BooleanField()


class ArtifactEntryOut(serializers.Serializer):
    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    size = serializers.IntegerField(allow_null=True, help_text="null for a folder.")
    sha256 = serializers.CharField(allow_null=True, help_text="null for a folder.")
    pii = serializers.BooleanField(required=False, help_text="Files only.")


class ArtifactListOut(serializers.Serializer):
    path = serializers.CharField()
    files = ArtifactEntryOut(many=True)


class TrashExperimentOut(ExperimentOut):
    purge_after = serializers.DateTimeField(allow_null=True)


class TrashRunOut(RunBriefOut):
    purge_after = serializers.DateTimeField(allow_null=True)


class TrashOut(serializers.Serializer):
    experiments = TrashExperimentOut(many=True)
    runs = TrashRunOut(many=True)


# --- datasets --------------------------------------------------------------------------------


class JobBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()


class DatasetColumnOut(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField(allow_null=True)
    nullable = serializers.BooleanField(allow_null=True)
    null_count = serializers.IntegerField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    pii = serializers.BooleanField(allow_null=True)


class DatasetVersionBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.CharField()
    project = serializers.CharField()
    version = serializers.IntegerField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    format = serializers.CharField()
    read_options = _json()
    original_name = serializers.CharField()
    row_count = serializers.IntegerField()
    column_count = serializers.IntegerField()
    columns = DatasetColumnOut(many=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    profile_job = JobBriefOut(allow_null=True)
    validation_job = JobBriefOut(allow_null=True)


class DatasetVersionUploadOut(DatasetVersionBriefOut):
    created = serializers.BooleanField(help_text="false when identical content already was a version.")


# 201 for a new version; 200 with the version that already holds identical content.
DATASET_VERSION_UPLOADED = {201: DatasetVersionUploadOut, 200: DatasetVersionUploadOut}


class VersionLineageRunOut(serializers.Serializer):
    run_id = serializers.UUIDField()
    run_name = serializers.CharField()
    experiment = serializers.CharField()
    role = serializers.CharField()
    status = serializers.CharField()


class VersionLineageOut(serializers.Serializer):
    inputs_of = VersionLineageRunOut(many=True)
    outputs_of = VersionLineageRunOut(many=True)


class DatasetVersionOut(DatasetVersionBriefOut):
    profile = _json(allow_null=True,
                    help_text="Column statistics; the value-revealing parts of PII columns hidden.")
    validation = _json(allow_null=True, help_text="The last validation report.")
    lineage = VersionLineageOut()


class ValidationRuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    column = serializers.CharField()
    config = _json()
    created_at = serializers.DateTimeField()


class ValidationRuleListOut(serializers.Serializer):
    rules = ValidationRuleOut(many=True)


class LatestVersionOut(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()


class DatasetOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    versions = serializers.IntegerField(help_text="How many versions it has.")
    latest_version = LatestVersionOut(allow_null=True)


class DatasetListOut(serializers.Serializer):
    datasets = DatasetOut(many=True)


class DatasetDetailOut(DatasetOut):
    version_list = DatasetVersionBriefOut(many=True)
    rules = ValidationRuleOut(many=True)


class DatasetPreviewOut(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=_json(allow_null=True)))
    hidden_columns = serializers.ListField(child=serializers.CharField(), help_text='Shown as "***".')


class RunDatasetLinkOut(serializers.Serializer):
    dataset_version = serializers.IntegerField()
    dataset = serializers.CharField()
    version = serializers.IntegerField()
    role = serializers.CharField()
    sha256 = serializers.CharField()


class RunLineageOut(serializers.Serializer):
    inputs = RunDatasetLinkOut(many=True)
    outputs = RunDatasetLinkOut(many=True)


# --- training ---------------------------------------------------------------------------------


class EstimatorOut(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.CharField()
    params = _json(help_text="Default hyperparameters (scalars only).")


class EstimatorListOut(serializers.Serializer):
    estimators = EstimatorOut(many=True)
    metrics = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    help_text="Task -> the metrics a spec may ask for.")


class TrainingRecordOut(serializers.Serializer):
    run_id = serializers.UUIDField()
    spec = _json()
    resolved_features = _json()
    job_id = serializers.IntegerField(allow_null=True)
    sweep_id = serializers.IntegerField(allow_null=True)
    rerun_of = serializers.UUIDField(allow_null=True)


class SweepProgressOut(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    percent = serializers.IntegerField()


class SweepTrialOut(serializers.Serializer):
    trial = serializers.IntegerField()
    params = _json()
    job_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    progress = serializers.IntegerField()
    error = serializers.CharField()
    run_id = serializers.UUIDField(allow_null=True)
    objective = serializers.FloatField(allow_null=True)
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    best = serializers.BooleanField()


class SweepBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.CharField()
    experiment = serializers.CharField()
    status = serializers.CharField()
    objective = serializers.CharField()
    goal = serializers.CharField()
    parallelism = serializers.IntegerField()
    search = _json()
    spec = _json()
    best_run_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = SweepProgressOut()


class SweepOut(SweepBriefOut):
    leaderboard = SweepTrialOut(many=True, help_text="Every trial, best first.")


class SweepListOut(serializers.Serializer):
    sweeps = SweepBriefOut(many=True)

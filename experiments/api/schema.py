"""What the tracking, artifact, search, job and trash API answer, for the OpenAPI schema only.

Output-only serializers that describe the dicts the views build (``run_output``,
``job_output``, ...); the views never serialize through them.
Shapes used by more than one endpoint (a job, a run) are
defined once here and shared with the apps above.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def json_field(**kwargs) -> serializers.JSONField:
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
    params = json_field()
    result = json_field(allow_null=True)
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
    packages = json_field()


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

"""What the dataset API answers, for the OpenAPI schema only.

Output-only serializers that describe the dicts the views build; the views never serialize
through them.
"""

from __future__ import annotations

from rest_framework import serializers

from experiments.api.schema import JobBriefOut, json_field


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
    read_options = json_field()
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
    profile = json_field(allow_null=True,
                    help_text="Column statistics; the value-revealing parts of PII columns hidden.")
    validation = json_field(allow_null=True, help_text="The last validation report.")
    lineage = VersionLineageOut()


class ValidationRuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    column = serializers.CharField()
    config = json_field()
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
    rows = serializers.ListField(child=serializers.ListField(child=json_field(allow_null=True)))
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

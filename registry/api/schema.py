"""What the registry API answers, for the OpenAPI schema only (``model_output``, ``version_output``...)."""

from __future__ import annotations

from rest_framework import serializers


class ModelOut(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    tags = serializers.DictField(child=serializers.CharField())
    protected_aliases = serializers.ListField(child=serializers.CharField())
    log_pii = serializers.BooleanField()
    aliases = serializers.DictField(child=serializers.IntegerField(), help_text="Alias -> version number.")
    latest_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ModelListOut(serializers.Serializer):
    models = ModelOut(many=True)


class PickleTrustOut(serializers.Serializer):
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)


class ModelVersionOut(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    run_id = serializers.UUIDField()
    artifact_path = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    model_format = serializers.CharField()
    flavour = serializers.CharField()
    pii = serializers.BooleanField(help_text="The model file holds values of PII columns.")
    signature = serializers.JSONField(help_text="Input columns and their types; PII fill values hidden.")
    output_kind = serializers.CharField()
    classes = serializers.ListField(child=serializers.JSONField())
    metrics = serializers.JSONField(help_text="The run's metrics when the version was registered.")
    runtime = serializers.CharField()
    runtime_reason = serializers.CharField()
    verification = serializers.JSONField()
    onnx_sha256 = serializers.CharField(allow_null=True)
    aliases = serializers.ListField(child=serializers.CharField())
    author = serializers.CharField(allow_null=True)
    description = serializers.CharField()
    check_job_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    trusted = PickleTrustOut(required=False, allow_null=True,
                             help_text="Pickle and joblib versions only: who trusted its hash, if anyone.")


class ModelVersionListOut(serializers.Serializer):
    versions = ModelVersionOut(many=True)


class AliasEventOut(serializers.Serializer):
    alias = serializers.CharField()
    kind = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    previous_version = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(allow_null=True)
    via = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


class AliasListOut(serializers.Serializer):
    aliases = serializers.DictField(child=serializers.IntegerField(), help_text="Alias -> version number.")
    protected = serializers.ListField(child=serializers.CharField())
    history = AliasEventOut(many=True)


class AliasSetOut(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.IntegerField()


class TrustedHashOut(serializers.Serializer):
    sha256 = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()


class TrustedHashListOut(serializers.Serializer):
    trusted = TrustedHashOut(many=True)


class TrustedHashAddedOut(serializers.Serializer):
    sha256 = serializers.CharField()
    by = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


class CompareSideOut(serializers.Serializer):
    version = serializers.IntegerField()
    run_id = serializers.UUIDField()
    runtime = serializers.CharField()
    status = serializers.CharField()


class CompareMetricOut(serializers.Serializer):
    key = serializers.CharField()
    a = serializers.JSONField(allow_null=True)
    b = serializers.JSONField(allow_null=True)
    delta = serializers.FloatField(allow_null=True, help_text="b - a when both are numbers.")


class CompareOut(serializers.Serializer):
    a = CompareSideOut()
    b = CompareSideOut()
    metrics = CompareMetricOut(many=True)

"""What the governance API answers, for the OpenAPI schema only (``request_output``,
``fairness_output``...)."""

from __future__ import annotations

from rest_framework import serializers


class ReviewOut(serializers.Serializer):
    id = serializers.IntegerField()
    reviewer = serializers.CharField(allow_null=True)
    decision = serializers.CharField()
    comment = serializers.CharField()
    sha256 = serializers.CharField(help_text="The version's artifact hash the review is pinned to.")
    onnx_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)


class PromotionRequestOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField()
    model = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    alias = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    requester = serializers.CharField(allow_null=True)
    justification = serializers.CharField()
    checks = serializers.JSONField(help_text="The policy's checks and their outcomes.")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why the checks failed.")
    approvals_required = serializers.IntegerField()
    approvals = serializers.ListField(child=serializers.CharField(),
                                      help_text="Reviewers whose approval counts.")
    reviews = ReviewOut(many=True)
    previous_version = serializers.IntegerField(allow_null=True)
    superseded_by = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class PromotionRequestListOut(serializers.Serializer):
    promotion_requests = PromotionRequestOut(many=True)


class PromotionReviewOut(serializers.Serializer):
    review = ReviewOut()
    request = PromotionRequestOut()


class PolicyOut(serializers.Serializer):
    fairness_required = serializers.BooleanField()
    demographic_parity_ratio_min = serializers.FloatField()
    equalized_odds_difference_max = serializers.FloatField()
    min_group_size = serializers.IntegerField()
    performance_thresholds = serializers.JSONField(help_text='e.g. [{"metric": "accuracy", "min": 0.9}]')
    explanation_required = serializers.BooleanField()
    approvals_required = serializers.IntegerField()
    webhook_url = serializers.CharField()
    webhook_secret_set = serializers.BooleanField()
    scope = serializers.ChoiceField(choices=["model", "project"])


class AnalysisJobOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()


class FairnessThresholdsOut(serializers.Serializer):
    demographic_parity_ratio_min = serializers.FloatField()
    equalized_odds_difference_max = serializers.FloatField()
    min_group_size = serializers.IntegerField()


class FairnessOut(serializers.Serializer):
    """A version's bias audit; before it exists only status, version, job, error, task, groups,
    summary, verdicts, sensitive_features and data_source are given."""

    status = serializers.CharField()
    version = serializers.IntegerField()
    job = AnalysisJobOut(allow_null=True)
    error = serializers.CharField()
    task = serializers.CharField()
    data_source = serializers.JSONField()
    sensitive_features = serializers.ListField(child=serializers.CharField())
    min_group_size = serializers.IntegerField(required=False)
    groups = serializers.JSONField(help_text="Per sensitive feature and group: counts and rates.")
    summary = serializers.JSONField(help_text="Per sensitive feature: parity ratios and differences.")
    verdicts = serializers.JSONField()
    thresholds = FairnessThresholdsOut(required=False)
    updated_at = serializers.DateTimeField(required=False, allow_null=True)


class ExplanationOut(serializers.Serializer):
    """A version's SHAP explanation; before it exists only the first ten fields are given."""

    status = serializers.CharField()
    version = serializers.IntegerField()
    job = AnalysisJobOut(allow_null=True)
    error = serializers.CharField()
    explainer = serializers.CharField()
    output = serializers.CharField()
    base_value = serializers.FloatField(allow_null=True)
    global_importance = serializers.DictField(child=serializers.FloatField(), help_text="Largest first.")
    rows = serializers.JSONField()
    additivity_ok = serializers.BooleanField(allow_null=True)
    explained_class = serializers.JSONField(required=False, allow_null=True)
    additivity_max_error = serializers.FloatField(required=False, allow_null=True)
    row_count = serializers.IntegerField(required=False)
    background_size = serializers.IntegerField(required=False)
    data_source = serializers.JSONField(required=False)
    notes = serializers.JSONField(required=False)
    pii_masked = serializers.ListField(child=serializers.CharField(), required=False)
    updated_at = serializers.DateTimeField(required=False, allow_null=True)
    beeswarm = serializers.JSONField(required=False, help_text="With ?include=beeswarm only.")


class ExplanationRowsOut(serializers.Serializer):
    explainer = serializers.CharField()
    output = serializers.CharField()
    explained_class = serializers.JSONField(allow_null=True)
    base_value = serializers.JSONField(allow_null=True)
    rows = serializers.JSONField()
    additivity_ok = serializers.BooleanField(allow_null=True)


class AuditEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(allow_null=True)
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    project_id = serializers.IntegerField(allow_null=True)
    before = serializers.JSONField()
    after = serializers.JSONField()
    ip = serializers.CharField(allow_null=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditPageOut(serializers.Serializer):
    events = AuditEventOut(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class ProtectionChangeOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField()
    model = serializers.CharField()
    alias = serializers.CharField()
    status = serializers.CharField()
    justification = serializers.CharField()
    requested_by = serializers.CharField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class ProtectionChangeListOut(serializers.Serializer):
    requests = ProtectionChangeOut(many=True)


class ModelCardArtifactOut(serializers.Serializer):
    path = serializers.CharField()
    format = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    onnx_sha256 = serializers.CharField(allow_null=True)
    runtime = serializers.CharField(allow_null=True)


class ModelCardInputOut(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField(allow_null=True)
    pii = serializers.BooleanField()


class ModelCardSectionOut(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    text = serializers.CharField()


class ModelCardOut(serializers.Serializer):
    project = serializers.CharField()
    model = serializers.CharField()
    model_description = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    description = serializers.CharField()
    author = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    artifact = ModelCardArtifactOut()
    output_kind = serializers.CharField(allow_null=True)
    classes = serializers.ListField(child=serializers.JSONField())
    inputs = ModelCardInputOut(many=True)
    aliases = serializers.ListField(child=serializers.CharField())
    metrics = serializers.JSONField(help_text="[[name, value], ...] sorted by name.")
    lineage = serializers.JSONField(help_text="The run, its params, datasets and training spec.")
    fairness = serializers.JSONField(allow_null=True)
    explanation = serializers.JSONField(allow_null=True)
    sections = ModelCardSectionOut(many=True)
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    generated_at = serializers.DateTimeField()

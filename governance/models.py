"""Governance tables. The analyses (fairness audit, explanation) hold one row per model version,
created as soon as the version exists in governance's eyes, so the API can answer 200 with a
status while the job is queued instead of 404."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Project
from core.models import Job
from governance.verdicts import FairnessThresholds
from registry.models import ModelVersion, RegisteredModel


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


# --- The audit log ----------------------------------------------------------------------------

AUDIT_GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One governance-relevant action, hash-chained to the one before it.

    Actor and project are plain values, never foreign keys: deleting a user or a project must not
    cascade into (or null out) the record of what they did. On PostgreSQL a trigger refuses UPDATE
    and DELETE; ``verify_audit_log`` recomputes every hash and names the first broken link.
    """

    actor_id = models.IntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.TextField()
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=200)
    project_id = models.IntegerField(null=True, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project_id", "-id"], name="auditevent_project_idx"),
            models.Index(fields=["action"], name="auditevent_action_idx"),
            models.Index(fields=["created_at"], name="auditevent_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"


# --- Governed changes to an alias's protection ----------------------------------------------


class ProtectionChangeStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ProtectionChangeRequest(models.Model):
    """A request to take an alias off a model's protected list.

    Adding protection is direct; removing it waits for a member with the reviewer role or
    above, other than the requester, to approve. Without this an owner alone could unprotect
    ``champion``, move it by hand and protect it again.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="protection_requests")
    alias = models.CharField(max_length=64)
    justification = models.TextField()
    status = models.CharField(
        max_length=20, choices=ProtectionChangeStatus.choices, default=ProtectionChangeStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "alias"], condition=models.Q(status="pending"),
                name="protection_request_one_pending",
            )
        ]


# --- Model cards ----------------------------------------------------------------------------

MODEL_CARD_SECTIONS = [
    ("intended_use", "Intended use"),
    ("out_of_scope_use", "Out-of-scope use"),
    ("limitations", "Limitations"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats", "Caveats and recommendations"),
]


class ModelCard(models.Model):
    """The hand-written sections of a version's model card; the rest is generated from lineage."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="model_card")
    sections = models.JSONField(default=dict, blank=True)  # {section key: markdown text}
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)



# --- Policies, promotion requests, reviews, notifications ------------------------------------

class Policy(models.Model):
    """What a version must pass before a protected alias moves to it.

    One row with ``model`` empty is the project's default; a row per registered model overrides
    it. ``policy_for_model`` (governance.policies) returns the one in force.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="governance_policies")
    model = models.OneToOneField(RegisteredModel, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="governance_policy")
    fairness_required = models.BooleanField(default=True)
    demographic_parity_ratio_min = models.FloatField(default=0.8)
    equalized_odds_difference_max = models.FloatField(default=0.1)
    min_group_size = models.PositiveIntegerField(default=30)
    # [{"metric": "accuracy", "min": 0.9}] or [{"metric": "auc", "champion_tolerance": 0.01}]
    performance_thresholds = models.JSONField(default=list, blank=True)
    explanation_required = models.BooleanField(default=True)
    approvals_required = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    # Optional signed webhook told about review requests and decisions (core.webhooks).
    webhook_url = models.URLField(blank=True, max_length=500)
    webhook_secret = models.CharField(blank=True, max_length=200)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=models.Q(model__isnull=True),
                                    name="governance_policy_one_default"),
            models.CheckConstraint(condition=models.Q(approvals_required__gte=1),
                                   name="governance_policy_approvals_at_least_one"),
        ]

    def fairness_thresholds(self) -> FairnessThresholds:
        return FairnessThresholds(
            demographic_parity_ratio_min=self.demographic_parity_ratio_min,
            equalized_odds_difference_max=self.equalized_odds_difference_max,
            min_group_size=self.min_group_size,
        )


class PromotionStatus(models.TextChoices):
    CHECKS_RUNNING = "checks_running", "checks running"
    BLOCKED = "blocked", "blocked"
    IN_REVIEW = "in_review", "in review"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    WITHDRAWN = "withdrawn", "withdrawn"
    SUPERSEDED = "superseded", "superseded"


OPEN_STATUSES = (PromotionStatus.CHECKS_RUNNING, PromotionStatus.BLOCKED, PromotionStatus.IN_REVIEW)


class PromotionKind(models.TextChoices):
    PROMOTE = "promote"
    # An owner put the alias back where it was before an approved promotion (or removed it).
    ROLLBACK = "rollback"


class PromotionRequest(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="promotion_requests")
    # Null only for a rollback that removed the alias (the first champion's promotion undone).
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="promotion_requests")
    alias = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=PromotionKind.choices, default=PromotionKind.PROMOTE)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                  related_name="promotion_requests")
    justification = models.TextField()
    status = models.CharField(max_length=20, choices=PromotionStatus.choices,
                              default=PromotionStatus.CHECKS_RUNNING)
    # The latest evaluation: [{"check", "name", "state": passed|failed|pending, "message"}]
    checks = models.JSONField(default=list, blank=True)
    # Where the alias pointed before this request moved it (what a rollback returns to).
    previous_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    rolled_back = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="rollbacks")
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "alias", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model.name}@{self.alias}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reasons(self) -> list[str]:
        return [c["message"] for c in self.checks if c.get("state") == "failed"]


class ReviewDecision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes", "request changes"


class Review(models.Model):
    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                 related_name="+")
    decision = models.CharField(max_length=20, choices=ReviewDecision.choices)
    comment = models.TextField(blank=True)
    # What was reviewed: an approval counts only while the version's files still have these hashes.
    version_sha256 = models.CharField(max_length=64)
    version_onnx_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class Notification(models.Model):
    """An in-app notice shown in the Reviews inbox."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    request = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="notifications")
    event = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

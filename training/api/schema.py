"""What the training API answers, for the OpenAPI schema only.

Output-only serializers that describe the dicts the views build; the views never serialize
through them.
"""

from __future__ import annotations

from rest_framework import serializers

from experiments.api.schema import json_field


class EstimatorOut(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.CharField()
    params = json_field(help_text="Default hyperparameters (scalars only).")


class EstimatorListOut(serializers.Serializer):
    estimators = EstimatorOut(many=True)
    metrics = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    help_text="Task -> the metrics a spec may ask for.")


class TrainingRecordOut(serializers.Serializer):
    run_id = serializers.UUIDField()
    spec = json_field()
    resolved_features = json_field()
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
    params = json_field()
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
    search = json_field()
    spec = json_field()
    best_run_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = SweepProgressOut()


class SweepOut(SweepBriefOut):
    leaderboard = SweepTrialOut(many=True, help_text="Every trial, best first.")


class SweepListOut(serializers.Serializer):
    sweeps = SweepBriefOut(many=True)

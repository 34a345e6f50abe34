"""Training API: submit a spec, re-run a run, sweeps, and the estimator allow-list."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import project_for_user, require_role
from experiments.api import schema as tracking_schema
from experiments.api.views import job_output
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH
from experiments.selectors import run_for_user
from training import services as training
from training import sweeps
from training.api import schema as api_schema
from training.models import Sweep


class EstimatorListApi(APIView):
    @extend_schema(responses=api_schema.EstimatorListOut)
    def get(self, request):
        return Response({"estimators": training.estimator_catalog(), "metrics": training.METRICS})


class TrainingJobApi(APIView):
    class Input(serializers.Serializer):
        experiment = serializers.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
        spec = serializers.JSONField()

    @extend_schema(request=Input, responses={202: tracking_schema.JobOut})
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job = training.training_job_submit(project=project, user=request.user, **data.validated_data)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class RunRerunApi(APIView):
    @extend_schema(request=None, responses={202: tracking_schema.JobOut})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        job = training.training_rerun(run=run, user=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class RunTrainingApi(APIView):
    @extend_schema(responses=api_schema.TrainingRecordOut)
    def get(self, request, run_id):
        record = training.training_record_for(run_for_user(request.user, run_id))
        return Response({
            "run_id": str(record.run_id), "spec": record.spec, "resolved_features": record.resolved_features,
            "job_id": record.job_id, "sweep_id": record.sweep_id,
            "rerun_of": str(record.rerun_of_id) if record.rerun_of_id else None,
        })


def sweep_output(sweep: Sweep, *, full: bool = True) -> dict[str, Any]:
    body = {
        "id": sweep.pk, "name": sweep.name, "project": sweep.project.slug,
        "experiment": sweep.experiment.name, "status": sweep.status, "objective": sweep.objective,
        "goal": sweep.goal, "parallelism": sweep.parallelism, "search": sweep.search,
        "spec": sweep.base_spec, "best_run_id": str(sweep.best_run_id) if sweep.best_run_id else None,
        "created_at": sweep.created_at.isoformat(),
        "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
        "progress": sweeps.sweep_progress(sweep),
    }
    if full:
        body["leaderboard"] = sweeps.sweep_leaderboard(sweep)
    return body


def sweep_for_user(user, sweep_id: int, min_role: Role = Role.VIEWER) -> Sweep:
    sweep = Sweep.objects.select_related("project", "experiment").filter(pk=sweep_id).first()
    if sweep is None:
        raise Http404("No such sweep.")
    require_role(user, sweep.project, min_role)
    return sweep


class SweepListApi(APIView):
    class Input(serializers.Serializer):
        experiment = serializers.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
        spec = serializers.JSONField()
        search = serializers.JSONField()
        objective = serializers.CharField(required=False, max_length=250)
        goal = serializers.CharField(required=False)
        parallelism = serializers.IntegerField(required=False, default=2)
        name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    @extend_schema(responses=api_schema.SweepListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        rows = Sweep.objects.filter(project=project).select_related("project", "experiment")[:100]
        return Response({"sweeps": [sweep_output(s, full=False) for s in rows]})

    @extend_schema(request=Input, responses={201: api_schema.SweepOut})
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        sweep = sweeps.sweep_create(project=project, user=request.user, **data.validated_data)
        sweep.refresh_from_db()
        return Response(sweep_output(sweep), status=status.HTTP_201_CREATED)


class SweepDetailApi(APIView):
    @extend_schema(responses=api_schema.SweepOut)
    def get(self, request, sweep_id: int):
        sweep = sweep_for_user(request.user, sweep_id)
        if sweep.status == "running":
            # A trial failed by the reaper never reported back; queue what it held up.
            sweeps.sweep_advance(sweep_id=sweep.pk)
            sweep.refresh_from_db()
        return Response(sweep_output(sweep))


class SweepCancelApi(APIView):
    @extend_schema(request=None, responses=api_schema.SweepOut)
    def post(self, request, sweep_id: int):
        sweep = sweeps.sweep_cancel(sweep=sweep_for_user(request.user, sweep_id, min_role=Role.EDITOR))
        return Response(sweep_output(sweep))

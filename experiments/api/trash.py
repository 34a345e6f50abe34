"""Delete and restore runs and experiments, and list a project's trash."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import project_for_user
from experiments import trash
from experiments.api import schema as api_schema
from experiments.api.views import run_output
from experiments.models import Experiment, Lifecycle, Run
from experiments.selectors import run_for_user


def experiment_output(experiment: Experiment) -> dict:
    return {
        "id": experiment.pk, "name": experiment.name, "description": experiment.description,
        "created_at": experiment.created_at.isoformat(), "lifecycle": experiment.lifecycle,
        "deleted_at": experiment.deleted_at.isoformat() if experiment.deleted_at else None,
    }


def _purge_after(obj) -> str | None:
    if obj.deleted_at is None:
        return None
    return (obj.deleted_at + dt.timedelta(days=settings.TRASH_RETENTION_DAYS)).isoformat()


def experiment_for_user(user, slug: str, experiment_id: int, min_role: Role = Role.VIEWER) -> Experiment:
    project = project_for_user(user, slug, min_role=min_role)
    experiment = Experiment.objects.filter(project=project, pk=experiment_id).first()
    if experiment is None:
        raise Http404("No such experiment in this project.")
    return experiment


class RunRestoreApi(APIView):
    @extend_schema(operation_id="v1_run_restore", request=None, responses=api_schema.RunOut)
    def post(self, request, run_id):
        """Take a run out of the trash (editor)."""
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR, allow_deleted=True)
        return Response(run_output(trash.run_restore(run=run, user=request.user)))


class ExperimentDetailApi(APIView):
    @extend_schema(operation_id="v1_experiment_get", responses=api_schema.ExperimentOut)
    def get(self, request, slug, experiment_id):
        return Response(experiment_output(experiment_for_user(request.user, slug, experiment_id)))

    @extend_schema(operation_id="v1_experiment_delete", responses={200: api_schema.ExperimentOut})
    def delete(self, request, slug, experiment_id):
        """Move an experiment and its runs to the trash (editor); restorable until purged."""
        experiment = experiment_for_user(request.user, slug, experiment_id, min_role=Role.EDITOR)
        return Response(experiment_output(trash.experiment_delete(experiment=experiment, user=request.user)))


class ExperimentRestoreApi(APIView):
    @extend_schema(operation_id="v1_experiment_restore", request=None, responses=api_schema.ExperimentOut)
    def post(self, request, slug, experiment_id):
        """Restore an experiment and the runs that went to the trash with it (editor)."""
        experiment = experiment_for_user(request.user, slug, experiment_id, min_role=Role.EDITOR)
        return Response(experiment_output(trash.experiment_restore(experiment=experiment, user=request.user)))


class TrashApi(APIView):
    @extend_schema(operation_id="v1_project_trash", responses=api_schema.TrashOut)
    def get(self, request, slug):
        """What a project's trash holds, newest first, with when each item is purged."""
        project = project_for_user(request.user, slug)
        experiments = Experiment.objects.filter(project=project, lifecycle=Lifecycle.DELETED).order_by(
            "-deleted_at")
        runs = Run.objects.filter(project=project, lifecycle=Lifecycle.DELETED).select_related(
            "experiment", "project", "author").order_by("-deleted_at")[:500]
        return Response({
            "experiments": [{**experiment_output(e), "purge_after": _purge_after(e)} for e in experiments],
            "runs": [{**run_output(r, full=False), "purge_after": _purge_after(r)} for r in runs],
        })

"""Tracking API: thin views that parse, check permission and call a service."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_project_access
from accounts.models import Role
from accounts.permissions import project_for_user, require_role
from core import idempotency, jobs
from core import validation as v
from core.models import Job
from experiments import selectors, services
from experiments.api import schema as api_schema
from experiments.api import serializers as inputs
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH, Experiment, Lifecycle, Run
from experiments.selectors import run_for_user


class ExperimentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    lifecycle = serializers.CharField()


class ExperimentListApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="v1_projects_experiments_list",
        responses=inline_serializer("ExperimentList", {"experiments": ExperimentOutput(many=True)}),
        parameters=[OpenApiParameter("view_type", str, enum=["active_only", "deleted_only", "all"])],
    )
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        view_type = request.query_params.get("view_type", "active_only")
        experiments = Experiment.objects.filter(project=project)
        if view_type == "active_only":
            experiments = experiments.filter(lifecycle=Lifecycle.ACTIVE)
        elif view_type == "deleted_only":
            experiments = experiments.filter(lifecycle=Lifecycle.DELETED)
        elif view_type != "all":
            raise ValidationError({"view_type": "Must be one of active_only, deleted_only, all."})
        return Response({"experiments": ExperimentOutput(experiments, many=True).data})

    @extend_schema(request=Input, responses={201: ExperimentOutput})
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_create(
            project=project, user=request.user, **data.validated_data
        )
        return Response(ExperimentOutput(experiment).data, status=status.HTTP_201_CREATED)


def run_output(run: Run, *, full: bool = True) -> dict:
    body = {
        "id": str(run.pk),
        "name": run.name,
        "project": run.project.slug,
        "experiment": run.experiment.name,
        "experiment_id": run.experiment_id,
        "status": run.status,
        "start_time": run.start_time.isoformat(),
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "author": run.author.username if run.author else None,
        "notes": run.notes,
        "error": run.error,
        "seed": run.seed,
        "parent_run_id": str(run.parent_id) if run.parent_id else None,
        "lifecycle": run.lifecycle,
        "deleted_at": run.deleted_at.isoformat() if run.deleted_at else None,
        "source": {
            "git_commit": run.git_commit,
            "git_branch": run.git_branch,
            "git_dirty": run.git_dirty,
            "entry_point": run.entry_point,
            "host": run.host,
            "python_version": run.python_version,
            "packages": run.packages,
        },
    }
    if full:
        if not hasattr(run, "details"):
            selectors.runs_with_details([run])
        body["params"] = run.details.params
        body["metrics"] = {
            key: {"value": v.float_out(value), "step": step, "timestamp": ts}
            for key, (value, step, ts) in run.details.metrics.items()
        }
        body["tags"] = run.details.tags
    return body


class RunCreateApi(APIView):
    # Runs are created by the hundred (sweeps, notebooks): for a POST, the token, the project,
    # the caller's role and the experiment are read in one query in post(), not one each.
    # Any other method is refused (401 or 405) as on every view.
    def perform_authentication(self, request):
        if request.method != "POST":
            super().perform_authentication(request)

    def get_permissions(self):
        return [] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(request=inputs.RunCreateIn, responses={201: api_schema.RunOut, 200: api_schema.RunOut})
    def post(self, request, slug):
        try:
            body, refused = request.data, None
        except Exception as exc:  # a body that cannot be read is answered after the credentials
            body, refused = None, exc
        name = body.get("experiment") if isinstance(body, dict) else None
        name = name.strip() if isinstance(name, str) else ""
        _, project, (experiment_id, lifecycle) = request_project_access(
            request, slug=slug, min_role=Role.EDITOR, columns=_EXPERIMENT_COLUMNS, joins=_EXPERIMENT_JOIN,
            params=(name,),
        )
        if refused is not None:
            raise refused
        try:
            fields = inputs.run_create_parse(body)
        except ValidationError:
            # A retry of a run that exists is answered with that run, whatever else its body says.
            created = services.run_create_retried(project=project, body=body)
            if created is None:
                raise
            return Response(run_output(created.run), status=status.HTTP_200_OK)
        if experiment_id is not None and fields["experiment"] == name:
            fields["experiment"] = Experiment.from_db(
                connection.alias, ["id", "project_id", "name", "lifecycle"],
                [experiment_id, project.pk, name, lifecycle],
            )
        created = services.run_create(project=project, user=request.user, **fields)
        if created.created:
            # A run made a moment ago holds only the tags it was given: nothing to read back.
            created.run.details = selectors.RunDetails({}, {}, created.tags)
            return Response(run_output(created.run), status=status.HTTP_201_CREATED)
        return Response(run_output(created.run), status=status.HTTP_200_OK)


# The experiment a run is created in, read with the caller's access (accounts.authentication).
_EXPERIMENT_COLUMNS = "e.id, e.lifecycle"
_EXPERIMENT_JOIN = f"LEFT JOIN {Experiment._meta.db_table} e ON e.project_id = p.id AND e.name = %s"


class RunPrefixLookupApi(APIView):
    """The runs whose id starts with a prefix, as ``steward runs show 3f2a9c1e`` needs."""

    class Query(serializers.Serializer):
        prefix = serializers.RegexField(
            r"^[0-9a-fA-F-]+\Z", max_length=36,
            help_text="4 to 32 hexadecimal characters of a run id (hyphens are ignored).",
        )
        project = serializers.SlugField(required=False, help_text="Only runs of this project.")

        def validate_prefix(self, value: str) -> str:
            digits = value.replace("-", "").lower()
            if not 4 <= len(digits) <= 32:
                raise serializers.ValidationError("Give 4 to 32 hexadecimal characters of a run id.")
            return digits

    class Match(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        project = serializers.CharField()
        experiment = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="v1_runs_by_prefix",
        parameters=[Query], responses=inline_serializer("RunPrefixMatches", {"runs": Match(many=True)}),
    )
    def get(self, request):
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        runs = selectors.runs_by_id_prefix(
            user=request.user, digits=query.validated_data["prefix"],
            project_slug=query.validated_data.get("project"),
        )
        return Response({"runs": [
            {"id": str(run.pk), "name": run.name, "project": run.project.slug,
             "experiment": run.experiment.name, "status": run.status}
            for run in runs
        ]})


class RunDetailApi(APIView):
    @extend_schema(responses=api_schema.RunOut)
    def get(self, request, run_id):
        return Response(run_output(run_for_user(request.user, run_id)))

    @extend_schema(request=inputs.RunUpdateIn, responses=api_schema.RunOut)
    def patch(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        services.run_update(run=run, **inputs.run_update_parse(request.data))
        return Response(run_output(run))

    @extend_schema(responses={200: api_schema.RunOut})
    def delete(self, request, run_id):
        """Move the run to the trash (editor): hidden from tables and search, restorable until purged."""
        from experiments import trash

        run = run_for_user(request.user, run_id, min_role=Role.EDITOR, allow_deleted=True)
        return Response(run_output(trash.run_delete(run=run, user=request.user)))


class ParamLogApi(APIView):
    @extend_schema(request=inputs.ParamIn, responses={201: inline_serializer(
        "ParamsLogged", {"params": serializers.IntegerField()})})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        pairs = inputs.param_pairs_parse([request.data] if isinstance(request.data, dict) else None, "param")
        services.params_log(run=run, pairs=pairs)
        return Response({"params": len(pairs)}, status=status.HTTP_201_CREATED)


class MetricLogApi(APIView):
    @extend_schema(request=inputs.MetricPointIn(many=True), responses={201: inline_serializer(
        "MetricsLogged", {"metrics": serializers.IntegerField()})})
    def post(self, request, run_id):
        """One point, or a list of points."""
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        items = request.data if isinstance(request.data, list) else [request.data]
        points = inputs.metric_points_parse(items, "metrics")
        services.metrics_log(run=run, points=points)
        return Response({"metrics": len(points)}, status=status.HTTP_201_CREATED)


class TagSetApi(APIView):
    @extend_schema(request=inputs.TagIn, responses={201: inline_serializer(
        "TagsSet", {"tags": serializers.IntegerField()})})
    def post(self, request, run_id):
        """One tag, or a list of tags."""
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        items = request.data if isinstance(request.data, list) else [request.data]
        pairs = inputs.tag_pairs_parse(items, "tag")
        services.tags_set(run=run, pairs=pairs)
        return Response({"tags": len(pairs)}, status=status.HTTP_201_CREATED)


class TagDeleteApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, run_id, key):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        services.tag_delete(run=run, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchLogApi(APIView):
    """Params, metrics and tags in one request, stored whole or not at all.

    With an ``Idempotency-Key`` header the same request sent twice is stored
    once, and the second answer is the first one's; the key sent with another
    body is a 422.
    """

    @extend_schema(
        request=inputs.BatchIn,
        responses={201: api_schema.BatchCountsOut},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        batch = inputs.batch_parse(request.data)

        def work():
            return status.HTTP_201_CREATED, services.batch_log(run=run, batch=batch)

        code, body = idempotency.idempotent(
            user=request.user, key=request.headers.get("Idempotency-Key"),
            scope=f"batch:{run.pk}", body=request.data, work=work,
        )
        return Response(body, status=code)


class MetricHistoryApi(APIView):
    class Query(serializers.Serializer):
        key = serializers.CharField(max_length=250)
        max_points = serializers.IntegerField(required=False, min_value=2, max_value=100_000)

    @extend_schema(parameters=[Query], responses=api_schema.MetricHistoryOut)
    def get(self, request, run_id):
        run = run_for_user(request.user, run_id)
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        history = selectors.metric_history(run=run, **query.validated_data)
        if not history.downsampled and history.total > selectors.HISTORY_CHUNK:
            # Streamed as it is read: the server never holds a long history whole.
            return StreamingHttpResponse(history.chunks, content_type="application/json")
        return HttpResponse(b"".join(history.chunks), content_type="application/json")


def job_output(job: Job) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "params": job.params,
        "result": job.result,
        "error": job.error,
        "log": job.log,
        "project": job.project.slug if job.project_id else None,
        "created_by": job.created_by.username if job.created_by_id else None,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_for_user(user, job_id: int, min_role: Role = Role.VIEWER) -> Job:
    job = Job.objects.select_related("project", "created_by").filter(pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    if job.project_id is None:
        if not (user.is_staff or job.created_by_id == user.pk):
            raise Http404("No such job.")
    else:
        require_role(user, job.project, min_role)
    return job


class JobDetailApi(APIView):
    @extend_schema(responses=api_schema.JobOut)
    def get(self, request, job_id: int):
        return Response(job_output(job_for_user(request.user, job_id)))


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=api_schema.JobOut)
    def post(self, request, job_id: int):
        job = job_for_user(request.user, job_id, min_role=Role.EDITOR)
        return Response(job_output(jobs.job_cancel(job=job)))


class JobListApi(APIView):
    @extend_schema(responses=api_schema.JobListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        recent = Job.objects.filter(project=project).select_related("project", "created_by")[:100]
        return Response({"jobs": [job_output(j) for j in recent]})


class RunSummaryJobApi(APIView):
    """Queue a job that summarises every metric of a run (count, min, max, last)."""

    @extend_schema(request=None, responses={202: api_schema.JobOut})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        job = jobs.job_create(
            kind="run_summary", project=run.project, user=request.user, params={"run_id": str(run.pk)}
        )
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)

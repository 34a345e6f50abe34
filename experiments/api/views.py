"""Tracking API: thin views that parse, check permission and call a service."""

from __future__ import annotations

import re
import uuid

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


class SourceInput(serializers.Serializer):
    git_commit = serializers.CharField(required=False, allow_blank=True)
    git_branch = serializers.CharField(required=False, allow_blank=True)
    git_dirty = serializers.BooleanField(required=False, allow_null=True)
    entry_point = serializers.CharField(required=False, allow_blank=True)
    host = serializers.CharField(required=False, allow_blank=True)
    python_version = serializers.CharField(required=False, allow_blank=True)
    packages = serializers.DictField(required=False)


class RunCreateApi(APIView):
    class Input(serializers.Serializer):
        experiment = serializers.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
        id = serializers.UUIDField(required=False)
        name = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")
        start_time = serializers.IntegerField(required=False, help_text="Epoch milliseconds.")
        tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
        source = SourceInput(required=False)
        seed = serializers.IntegerField(required=False, allow_null=True)
        notes = serializers.CharField(required=False, allow_blank=True, default="")
        parent_run_id = serializers.UUIDField(
            required=False, allow_null=True, help_text="A run of the same project this run is nested under."
        )

    # Runs are created by the hundred (sweeps, notebooks): for a POST, the token, the project,
    # the caller's role and the experiment are read in one query in post(), not one each.
    # Any other method is refused (401 or 405) as on every view.
    def perform_authentication(self, request):
        if request.method != "POST":
            super().perform_authentication(request)

    def get_permissions(self):
        return [] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(request=Input, responses={201: api_schema.RunOut, 200: api_schema.RunOut})
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
        fields = _plain_create_body(body)
        if fields is None:
            data = self.Input(data=body)
            if not data.is_valid():
                created = services.run_create_retried(project=project, body=body)
                if created is None:
                    raise serializers.ValidationError(data.errors)
                return Response(run_output(created.run), status=status.HTTP_200_OK)
            fields = dict(data.validated_data)
        run_id = fields.pop("id", None)
        if experiment_id is not None and fields["experiment"] == name:
            fields["experiment"] = Experiment.from_db(
                connection.alias, ["id", "project_id", "name", "lifecycle"],
                [experiment_id, project.pk, name, lifecycle],
            )
        created = services.run_create(
            project=project, user=request.user, run_id=str(run_id) if run_id else None, **fields,
        )
        if created.created:
            # A run made a moment ago holds only the tags it was given: nothing to read back.
            created.run.details = selectors.RunDetails({}, {}, created.tags)
            return Response(run_output(created.run), status=status.HTTP_201_CREATED)
        return Response(run_output(created.run), status=status.HTTP_200_OK)


# The experiment a run is created in, read with the caller's access (accounts.authentication).
_EXPERIMENT_COLUMNS = "e.id, e.lifecycle"
_EXPERIMENT_JOIN = f"LEFT JOIN {Experiment._meta.db_table} e ON e.project_id = p.id AND e.name = %s"
_PLAIN_FIELDS = frozenset({"experiment", "id", "name", "start_time", "tags", "notes", "seed", "parent_run_id",
                           "source"})
_SOURCE_TEXT = frozenset({"git_commit", "git_branch", "entry_point", "host", "python_version"})
_SOURCE_FIELDS = _SOURCE_TEXT | {"git_dirty", "packages"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_text(value) -> bool:
    """A string RunCreateApi.Input takes as it is: no whitespace to trim, no lone surrogate."""
    return type(value) is str and value == value.strip() and (value.isascii() or not _SURROGATE.search(value))


def _plain_create_body(body) -> dict | None:
    """What RunCreateApi.Input validates a body to, for the body the SDK sends (each field of
    its plain JSON type); None for any other body, which the serializer reads (and names the
    field it refuses)."""
    if type(body) is not dict or not body.keys() <= _PLAIN_FIELDS:
        return None
    experiment, name, notes = body.get("experiment"), body.get("name", ""), body.get("notes", "")
    if not (_plain_text(experiment) and 0 < len(experiment) <= EXPERIMENT_NAME_MAX_LENGTH
            and _plain_text(name) and len(name) <= 250 and _plain_text(notes)):
        return None
    fields = {"experiment": experiment, "name": name, "notes": notes}
    for key, nullable in (("id", False), ("parent_run_id", True)):
        if key in body:
            value = body[key]
            if value is None and nullable:
                fields[key] = None
                continue
            if type(value) is not str:
                return None
            try:
                fields[key] = uuid.UUID(hex=value)
            except ValueError:
                return None
    for key, nullable in (("start_time", False), ("seed", True)):
        if key in body:
            value = body[key]
            if value is None and nullable:
                fields[key] = None
                continue
            if type(value) is not int or not v.INT64_MIN <= value <= v.INT64_MAX:
                return None
            fields[key] = value
    if "tags" in body:
        tags = body["tags"]
        if type(tags) is not dict or not all(_plain_text(value) for value in tags.values()):
            return None
        fields["tags"] = tags
    if "source" in body:
        source = body["source"]
        if type(source) is not dict or not source.keys() <= _SOURCE_FIELDS:
            return None
        for key, value in source.items():
            if key in _SOURCE_TEXT:
                plain = _plain_text(value)
            elif key == "git_dirty":
                plain = value is None or type(value) is bool
            else:
                plain = type(value) is dict
            if not plain:
                return None
        fields["source"] = source
    return fields


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
    class Input(serializers.Serializer):
        status = serializers.CharField(required=False)
        end_time = serializers.IntegerField(required=False, help_text="Epoch milliseconds.")
        name = serializers.CharField(required=False, allow_blank=True, max_length=250)
        notes = serializers.CharField(required=False, allow_blank=True)
        error = serializers.CharField(required=False, allow_blank=True)
        seed = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(responses=api_schema.RunOut)
    def get(self, request, run_id):
        return Response(run_output(run_for_user(request.user, run_id)))

    @extend_schema(request=Input, responses=api_schema.RunOut)
    def patch(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        services.run_update(run=run, **data.validated_data)
        return Response(run_output(run))

    @extend_schema(responses={200: api_schema.RunOut})
    def delete(self, request, run_id):
        """Move the run to the trash (editor): hidden from tables and search, restorable until purged."""
        from experiments import trash

        run = run_for_user(request.user, run_id, min_role=Role.EDITOR, allow_deleted=True)
        return Response(run_output(trash.run_delete(run=run, user=request.user)))


class KeyValueDoc(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class MetricPointDoc(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.FloatField(help_text='A number, or "NaN", "Infinity", "-Infinity".')
    step = serializers.IntegerField(required=False, default=0)
    timestamp = serializers.IntegerField(required=False, help_text="Epoch milliseconds; default now.")


class BatchDoc(serializers.Serializer):
    params = KeyValueDoc(many=True, required=False)
    metrics = MetricPointDoc(many=True, required=False, help_text="At most 10,000 points.")
    tags = KeyValueDoc(many=True, required=False)


class ParamLogApi(APIView):
    @extend_schema(request=KeyValueDoc, responses={201: inline_serializer(
        "ParamsLogged", {"params": serializers.IntegerField()})})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        pairs = services.param_pairs_parse([request.data] if isinstance(request.data, dict) else None,
                                           field="param")
        services.params_log(run=run, pairs=pairs)
        return Response({"params": len(pairs)}, status=status.HTTP_201_CREATED)


class MetricLogApi(APIView):
    @extend_schema(request=MetricPointDoc(many=True), responses={201: inline_serializer(
        "MetricsLogged", {"metrics": serializers.IntegerField()})})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        items = request.data if isinstance(request.data, list) else [request.data]
        points = services.metric_points_parse(items)
        services.metrics_log(run=run, points=points)
        return Response({"metrics": len(points)}, status=status.HTTP_201_CREATED)


class TagSetApi(APIView):
    @extend_schema(request=KeyValueDoc, responses={201: inline_serializer(
        "TagsSet", {"tags": serializers.IntegerField()})})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        items = request.data if isinstance(request.data, list) else [request.data]
        pairs = services._tag_pairs(items, "tag")
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
        request=BatchDoc,
        responses={201: api_schema.BatchCountsOut},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        batch = services.batch_parse(request.data)

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

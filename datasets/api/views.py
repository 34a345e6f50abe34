"""Dataset API: streamed uploads, versions, column roles, preview, profile, validation rules, lineage."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import project_for_user, require_pii_access, require_role
from accounts.selectors import pii_hidden
from core.models import Job
from datasets import profile as dataset_profile
from datasets import services as datasets
from datasets.api import schema as api_schema
from datasets.models import Dataset, DatasetVersion, RunDataset, ValidationRule
from experiments import artifacts
from experiments.api import schema as tracking_schema
from experiments.api.views import job_output
from experiments.selectors import run_for_user

PII_HIDDEN_KEYS = ("min", "max", "quantiles", "top_values", "histogram", "mean", "std")


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = "A raw upload needs a Content-Length header; or send multipart/form-data."


def _job_brief(job: Job | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {"id": job.pk, "status": job.status, "progress": job.progress, "message": job.message,
            "error": job.error}


def profile_for(version: DatasetVersion, hidden: frozenset[str]) -> dict[str, Any] | None:
    """The profile, with the value-revealing parts of the ``hidden`` columns left out
    (accounts.selectors.pii_hidden says which they are for the reader)."""
    profile = version.profile
    pii = hidden
    if profile is None or not pii:
        return profile
    columns = []
    for col in profile["columns"]:
        if col["name"] in pii:
            col = {k: v for k, v in col.items() if k not in PII_HIDDEN_KEYS} | {"hidden": True}
        columns.append(col)
    groups = [g for g in profile.get("sensitive_groups", []) if g["column"] not in pii]
    labels = profile.get("labels")
    if labels and labels.get("column") in pii:
        labels = None
    return profile | {"columns": columns, "sensitive_groups": groups, "labels": labels}


def rule_config_shown(config: dict[str, Any], column: str, pii: frozenset[str]) -> dict[str, Any]:
    """A rule's config; the listed values of a PII column (they may be its very values) only counted."""
    if column in pii and isinstance(config.get("values"), list):
        return {"values_count": len(config["values"]), "hidden": True}
    return config


def validation_for(version: DatasetVersion, hidden: frozenset[str]) -> dict[str, Any] | None:
    """The stored validation report, with nothing that could quote the values of a ``hidden`` column.

    Reports store counts only for PII columns; this also covers a report made
    before its column was flagged.
    """
    report = version.validation
    pii = hidden
    if report is None or not pii:
        return report
    rules = []
    for entry in report.get("rules", []):
        if entry.get("column") in pii:
            entry = entry | {"config": rule_config_shown(entry.get("config") or {}, entry["column"], pii)}
            if entry.get("kind") == "allowed_values":
                entry["message"] = dataset_profile.allowed_values_message(entry.get("failed_count") or 0, [])
        rules.append(entry)
    return report | {"rules": rules}


def lineage_for_version(version: DatasetVersion) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"inputs_of": [], "outputs_of": []}
    links = RunDataset.objects.filter(dataset_version=version).select_related("run__experiment")
    for link in links:
        key = "inputs_of" if link.direction == "input" else "outputs_of"
        out[key].append({"run_id": str(link.run_id), "run_name": link.run.name,
                         "experiment": link.run.experiment.name, "role": link.role,
                         "status": link.run.status})
    return out


def version_output(version: DatasetVersion, user, *, full: bool = True) -> dict[str, Any]:
    body = {
        "id": version.pk,
        "dataset": version.dataset.name,
        "project": version.dataset.project.slug,
        "version": version.version,
        "sha256": version.sha256,
        "size": version.size,
        "format": version.format,
        "read_options": version.read_options,
        "original_name": version.original_name,
        "row_count": version.row_count,
        "column_count": version.column_count,
        "columns": [
            {k: c.get(k) for k in ("name", "dtype", "nullable", "null_count", "role", "pii")}
            for c in version.columns
        ],
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by.username if version.created_by_id else None,
        "profile_job": _job_brief(version.profile_job),
        "validation_job": _job_brief(version.validation_job),
    }
    if full:
        hidden = pii_hidden(user, version.dataset.project, version.columns)
        body["profile"] = profile_for(version, hidden)
        body["validation"] = validation_for(version, hidden)
        body["lineage"] = lineage_for_version(version)
    return body


def dataset_output(dataset: Dataset) -> dict[str, Any]:
    latest = dataset.versions.order_by("-version").first()
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "project": dataset.project.slug,
        "description": dataset.description,
        "created_at": dataset.created_at.isoformat(),
        "versions": dataset.versions.count(),
        "latest_version": {"id": latest.pk, "version": latest.version} if latest else None,
    }


def rule_output(rule: ValidationRule, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A rule; ``hidden`` names the PII columns whose allowed values the reader may not see."""
    return {"id": rule.pk, "kind": rule.kind, "column": rule.column,
            "config": rule_config_shown(rule.config, rule.column, hidden),
            "created_at": rule.created_at.isoformat()}


def pii_hidden_for(user, dataset: Dataset) -> frozenset[str]:
    """The PII columns of any version of ``dataset`` that ``user`` may not see values of."""
    return pii_hidden(user, dataset.project, *dataset.versions.values_list("columns", flat=True))


def _content_length(request) -> int:
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        raise LengthRequired()
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({"Content-Length": "Must be a whole number."}) from None


def _opt(source, name: str) -> str | None:
    value = source.get(name)
    return value if value not in (None, "") else None


def upload(request, project, name: str | None):
    """Shared by both upload endpoints: multipart (file field) or the raw body."""
    django_request = request._request
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data"):
        # Django spools a multipart file over 2 MB to a temp file, never to memory.
        form = django_request.POST
        upload_file = django_request.FILES.get("file")
        if upload_file is None:
            raise ValidationError({"file": "Attach the CSV or Parquet file as 'file'."})
        options, stream, length, filename = form, upload_file, upload_file.size, upload_file.name
    else:
        options = request.query_params
        stream, length = django_request, _content_length(request)
        filename = options.get("filename", "")
    name = name or options.get("name")
    try:
        return datasets.dataset_version_create(
            project=project, name=name, stream=stream, user=request.user, content_length=length,
            # A delimiter given empty is refused, not sniffed: only one left out is sniffed.
            filename=filename or "", fmt=_opt(options, "file_format"), delimiter=options.get("delimiter"),
            encoding=_opt(options, "encoding"), description=options.get("description", "") or "",
        )
    finally:
        if hasattr(stream, "close") and stream is not django_request:
            stream.close()


UPLOAD_PARAMS = [
    OpenApiParameter("file_format", str, enum=["csv", "parquet"], description="Detected when left out."),
    OpenApiParameter("delimiter", str, description="CSV delimiter, one ASCII character other than a quote "
                                                   "or a line break; sniffed when left out."),
    OpenApiParameter("encoding", str, description="CSV character encoding (utf-8, latin-1, cp1252, ...); "
                                                  "utf-8 when left out."),
    OpenApiParameter("filename", str),
]


class DatasetListApi(APIView):
    # No parsers: an upload body is streamed from the Django request, never parsed by DRF.
    parser_classes: list = []

    @extend_schema(operation_id="v1_projects_datasets_list", responses=api_schema.DatasetListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        return Response({"datasets": [dataset_output(d) for d in Dataset.objects.filter(project=project)]})

    @extend_schema(request={"multipart/form-data": OpenApiTypes.OBJECT}, parameters=UPLOAD_PARAMS,
                   responses=api_schema.DATASET_VERSION_UPLOADED)
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        created = upload(request, project, None)
        code = status.HTTP_201_CREATED if created.created else status.HTTP_200_OK
        body = version_output(created.version, request.user, full=False) | {"created": created.created}
        return Response(body, status=code)


class DatasetDetailApi(APIView):
    @extend_schema(responses=api_schema.DatasetDetailOut)
    def get(self, request, slug, name):
        dataset = datasets.dataset_for_user(request.user, slug, name)
        versions = dataset.versions.select_related("dataset__project", "created_by", "profile_job",
                                                   "validation_job")
        hidden = pii_hidden_for(request.user, dataset)
        return Response(dataset_output(dataset) | {
            "version_list": [version_output(v, request.user, full=False) for v in versions],
            "rules": [rule_output(r, hidden) for r in dataset.rules.all()],
        })


class DatasetVersionUploadApi(APIView):
    """Upload a new version: the raw file as the body (with Content-Length), or multipart 'file'.

    Identical content answers 200 with the version that already holds it.
    """

    parser_classes: list = []

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, parameters=UPLOAD_PARAMS,
                   responses=api_schema.DATASET_VERSION_UPLOADED)
    def post(self, request, slug, name):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        created = upload(request, project, name)
        code = status.HTTP_201_CREATED if created.created else status.HTTP_200_OK
        body = version_output(created.version, request.user, full=False) | {"created": created.created}
        return Response(body, status=code)


class DatasetVersionApi(APIView):
    @extend_schema(responses=api_schema.DatasetVersionOut)
    def get(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id)
        return Response(version_output(version, request.user))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, version_id):
        """Delete a dataset version and its file (editor); 409 while a model version was trained on it."""
        version = datasets.dataset_version_for_user(request.user, version_id, min_role=Role.EDITOR)
        datasets.dataset_version_delete(version=version, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetColumnsApi(APIView):
    class Input(serializers.Serializer):
        columns = serializers.DictField(child=serializers.DictField(), help_text="name -> {role, pii}")

    @extend_schema(request=Input, responses=api_schema.DatasetVersionOut)
    def patch(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id, min_role=Role.EDITOR)
        if not isinstance(request.data, dict):
            raise ValidationError({"columns": "Give {\"columns\": {name: {role, pii}}}."})
        version = datasets.dataset_columns_update(version=version, changes=request.data.get("columns"))
        return Response(version_output(version, request.user))


class DatasetPreviewApi(APIView):
    class Query(serializers.Serializer):
        rows = serializers.IntegerField(required=False, min_value=1, max_value=datasets.PREVIEW_MAX_ROWS,
                                        default=20)

    @extend_schema(parameters=[Query], responses=api_schema.DatasetPreviewOut)
    def get(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id)
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(datasets.dataset_version_preview(version=version, user=request.user,
                                                         rows=query.validated_data["rows"]))


class DatasetDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id)
        if any(c.get("pii") for c in version.columns):
            # The whole file would reveal what the preview hides.
            require_pii_access(request.user, version.dataset.project)
        try:
            blob = artifacts._blob_open(artifacts.artifact_storage(), version.storage_name)
        except FileNotFoundError:
            raise Http404("The file is missing from storage.") from None
        ext = "parquet" if version.format == "parquet" else "csv"
        return FileResponse(blob, as_attachment=True,
                            filename=f"{version.dataset.name}-v{version.version}.{ext}",
                            content_type="text/csv" if ext == "csv" else "application/octet-stream")


class DatasetProfileJobApi(APIView):
    @extend_schema(request=None, responses={202: tracking_schema.JobOut})
    def post(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id, min_role=Role.EDITOR)
        job = datasets.dataset_profile_start(version=version, user=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class DatasetValidateJobApi(APIView):
    @extend_schema(request=None, responses={202: tracking_schema.JobOut})
    def post(self, request, version_id):
        version = datasets.dataset_version_for_user(request.user, version_id, min_role=Role.EDITOR)
        job = datasets.dataset_validate_start(version=version, user=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class ValidationRuleListApi(APIView):
    class Input(serializers.Serializer):
        kind = serializers.CharField()
        column = serializers.CharField(required=False, allow_blank=True, default="")
        config = serializers.JSONField(required=False, default=dict)

    @extend_schema(responses=api_schema.ValidationRuleListOut)
    def get(self, request, slug, name):
        dataset = datasets.dataset_for_user(request.user, slug, name)
        hidden = pii_hidden_for(request.user, dataset)
        return Response({"rules": [rule_output(r, hidden) for r in dataset.rules.all()]})

    @extend_schema(request=Input, responses={201: api_schema.ValidationRuleOut})
    def post(self, request, slug, name):
        dataset = datasets.dataset_for_user(request.user, slug, name, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        rule = datasets.validation_rule_create(dataset=dataset, user=request.user, **data.validated_data)
        return Response(rule_output(rule), status=status.HTTP_201_CREATED)


class ValidationRuleDetailApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, rule_id: int):
        rule = ValidationRule.objects.select_related("dataset__project").filter(pk=rule_id).first()
        if rule is None:
            raise Http404("No such rule.")
        require_role(request.user, rule.dataset.project, Role.EDITOR)
        datasets.validation_rule_delete(rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


def lineage_for_run(run) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
    for link in RunDataset.objects.filter(run=run).select_related("dataset_version__dataset"):
        v = link.dataset_version
        out["inputs" if link.direction == "input" else "outputs"].append(
            {"dataset_version": v.pk, "dataset": v.dataset.name, "version": v.version, "role": link.role,
             "sha256": v.sha256}
        )
    return out


class RunDatasetsApi(APIView):
    class Input(serializers.Serializer):
        dataset_version = serializers.IntegerField()
        direction = serializers.ChoiceField(choices=["input", "output"], default="input")
        role = serializers.CharField(required=False, allow_blank=True, default="", max_length=50)

    @extend_schema(responses=api_schema.RunLineageOut)
    def get(self, request, run_id):
        return Response(lineage_for_run(run_for_user(request.user, run_id)))

    @extend_schema(request=Input, responses={201: api_schema.RunLineageOut})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version = DatasetVersion.objects.select_related("dataset").filter(
            pk=data.validated_data["dataset_version"], dataset__project=run.project
        ).first()
        if version is None:
            raise ValidationError({"dataset_version": "No such dataset version in the run's project."})
        datasets.run_dataset_link(run=run, version=version, direction=data.validated_data["direction"],
                                  role=data.validated_data["role"])
        return Response(lineage_for_run(run), status=status.HTTP_201_CREATED)

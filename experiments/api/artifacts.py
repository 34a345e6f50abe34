"""Artifact API: raw-body upload, streamed download, tree listing, checksum verification."""

from __future__ import annotations

import posixpath

from django.core.exceptions import ValidationError
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from core import jobs
from experiments import artifacts
from experiments.api import schema as api_schema
from experiments.api.views import job_output
from experiments.models import Artifact
from experiments.selectors import run_for_user


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = "An artifact upload needs a Content-Length header (chunked bodies are not accepted)."


def artifact_output(artifact: Artifact) -> dict:
    return {
        "path": artifact.path,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "content_type": artifact.content_type,
        "created_at": artifact.created_at.isoformat(),
        "pii": artifact.pii,
    }


def _content_length(request) -> int:
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        # Django reads a chunked body as empty: refuse rather than store an
        # empty artifact. With neither header the body is empty (RFC 9112 6.3).
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            raise LengthRequired()
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({"Content-Length": "Content-Length must be a whole number."}) from None


class ArtifactApi(APIView):
    # No parsers: the body is the artifact and is streamed from the underlying
    # Django request, so DRF must never read it (nor Django's size limits apply).
    parser_classes: list = []

    @extend_schema(
        operation_id="run_artifact_upload",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: api_schema.ArtifactOut},
    )
    def put(self, request, run_id, path):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        path = artifacts.artifact_path_clean(path)
        artifact = artifacts.artifact_upload(
            run=run,
            path=path,
            stream=request._request,
            content_length=_content_length(request),
            content_type=request.META.get("CONTENT_TYPE", ""),
        )
        return Response(artifact_output(artifact), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="run_artifact_download",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, run_id, path):
        run = run_for_user(request.user, run_id)
        artifact, blob = artifacts.artifact_open(run=run, path=path, user=request.user)
        response = FileResponse(
            blob,
            as_attachment=True,
            filename=posixpath.basename(artifact.path),
            content_type=artifact.content_type or artifacts.DEFAULT_CONTENT_TYPE,
        )
        response.block_size = artifacts.CHUNK_SIZE
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(artifact.size)
        response["ETag"] = f'"{artifact.sha256}"'
        response["X-Checksum-Sha256"] = artifact.sha256
        response["X-Content-Type-Options"] = "nosniff"
        # Should a browser render it anyway, it runs no script and sends no cookies.
        response["Content-Security-Policy"] = "sandbox"
        return response


class ArtifactListApi(APIView):
    class Query(serializers.Serializer):
        path = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
        recursive = serializers.BooleanField(required=False, default=False)

    @extend_schema(operation_id="run_artifacts_list", parameters=[Query],
                   responses=api_schema.ArtifactListOut)
    def get(self, request, run_id):
        run = run_for_user(request.user, run_id)
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        prefix = artifacts.artifact_dir_clean(query.validated_data["path"])
        files = artifacts.artifact_tree(
            run=run, prefix=prefix, recursive=query.validated_data["recursive"]
        )
        return Response({"path": prefix, "files": files})


class ArtifactVerifyApi(APIView):
    """Queue a job that re-reads every artifact of a run and checks its sha256 and size."""

    @extend_schema(operation_id="run_artifacts_verify", request=None, responses={202: api_schema.JobOut})
    def post(self, request, run_id):
        run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
        job = jobs.job_create(
            kind="artifact_verify", project=run.project, user=request.user,
            params={"run_id": str(run.pk)},
        )
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)

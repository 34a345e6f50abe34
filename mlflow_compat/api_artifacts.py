"""MLflow's artifact proxy (/api/2.0/mlflow-artifacts/) on Steward's run artifacts.

A run's artifact URI is ``mlflow-artifacts:/<experiment id>/<run id>/artifacts``; everything
below ``artifacts/`` is a path among that run's artifacts, cleaned by Steward's own path rule
(no ``..``, absolute paths, backslashes, NUL or control characters).
"""

from __future__ import annotations

import posixpath

from django.http import FileResponse
from rest_framework.response import Response

from accounts.models import Role
from experiments import artifacts
from experiments.api.artifacts import _content_length
from experiments.models import Run
from mlflow_compat import errors
from mlflow_compat.views_base import MlflowView

MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


def split_path(path: str) -> tuple[str, str, str] | None:
    """("<experiment id>", "<run id>", "<path below artifacts/>") or None if ``path`` is above a run."""
    parts = (path or "").strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts":
        return None
    return parts[0], parts[1], parts[3] if len(parts) == 4 else ""


class _ArtifactView(MlflowView):
    def run_at(self, request, experiment_id: str, run_id: str, min_role=Role.VIEWER) -> Run:
        run = self.run(request, run_id, min_role)
        if str(run.experiment_id) != experiment_id:
            raise errors.not_found(f"Run '{run_id}' not found in experiment {experiment_id[:20]}.")
        return run


class ArtifactList(_ArtifactView):
    def get(self, request, **kwargs):
        where = split_path(request.query_params.get("path", ""))
        if where is None:
            return Response({})
        run = self.run_at(request, where[0], where[1])
        prefix = artifacts.artifact_dir_clean(where[2])
        entries = artifacts.artifact_tree(run=run, prefix=prefix)
        start = len(prefix) + 1 if prefix else 0
        files = []
        for entry in entries:
            item = {"path": entry["path"][start:], "is_dir": entry["is_dir"]}
            if not entry["is_dir"]:
                item["file_size"] = entry["size"]
            files.append(item)
        return Response({"files": files} if files else {})


class ArtifactFile(_ArtifactView):
    # The body is the file, streamed from the request: DRF must never parse it.
    parser_classes: list = []

    def _where(self, path: str) -> tuple[str, str, str]:
        where = split_path(path)
        if where is None or not where[2]:
            raise errors.invalid(
                f"Artifact path '{path[:200]}' is not inside a run's artifacts "
                "(<experiment id>/<run id>/artifacts/<path>)."
            )
        return where

    def get(self, request, path, **kwargs):
        experiment_id, run_id, rel = self._where(path)
        run = self.run_at(request, experiment_id, run_id)
        artifact, blob = artifacts.artifact_open(run=run, path=rel, user=request.user)
        response = FileResponse(
            blob, as_attachment=True, filename=posixpath.basename(artifact.path),
            content_type=artifact.content_type or artifacts.DEFAULT_CONTENT_TYPE,
        )
        response.block_size = artifacts.CHUNK_SIZE
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(artifact.size)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response

    def put(self, request, path, **kwargs):
        experiment_id, run_id, rel = self._where(path)
        run = self.run_at(request, experiment_id, run_id, Role.EDITOR)
        artifacts.artifact_upload(
            run=run, path=rel, stream=request._request, content_length=_content_length(request),
            content_type=request.META.get("CONTENT_TYPE", ""),
        )
        return Response({})


class MultipartUpload(MlflowView):
    """Answered as MLflow's own server answers for a store without multipart upload, so the
    client falls back to one plain PUT."""

    parser_classes: list = []

    def post(self, request, **kwargs):
        raise errors.MlflowError(errors.NOT_IMPLEMENTED, MULTIPART_UNSUPPORTED, 501)

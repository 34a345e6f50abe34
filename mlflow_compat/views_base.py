"""The base of every MLflow endpoint: its authentication, MLflow's error shape, and reading
arguments the way MLflow's client sends them (query string for GET and DELETE, JSON otherwise)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from mlflow_compat import context, errors
from mlflow_compat.authentication import BasicTokenAuthentication


class MlflowView(APIView):
    authentication_classes = [BearerTokenAuthentication, BasicTokenAuthentication]
    permission_classes = [IsAuthenticated]
    # Not part of Steward's documented API: MLflow's own reference describes these endpoints.
    schema = None

    def get_exception_handler(self):
        return errors.mlflow_exception_handler

    def body(self, request) -> dict[str, Any]:
        query = {key: request.query_params.get(key) for key in request.query_params}
        if request.method == "GET":
            return query
        data = request.data
        if request.method == "DELETE":
            # MLflow's client sends a DELETE's arguments as a JSON body; other clients use the query.
            return {**query, **data} if isinstance(data, dict) else query
        if not isinstance(data, dict):
            if data in (None, "", b"") or (hasattr(data, "__len__") and not len(data)):
                return {}
            raise errors.invalid("The request body must be a JSON object.")
        return data

    def list_arg(self, request, name: str) -> list:
        if request.method == "GET":
            return request.query_params.getlist(name)
        value = request.data.get(name) if isinstance(request.data, dict) else None
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise errors.invalid(f"{name}: Must be a list.")
        return value

    def slug(self, request) -> str | None:
        return context.project_slug_of(request, self.kwargs)

    def project(self, request, min_role=None):
        from accounts.models import Role

        return context.project_for(request, self.slug(request), min_role or Role.VIEWER)

    def run(self, request, run_id, min_role=None):
        from accounts.models import Role

        return context.run_for(request, self.slug(request), run_id, min_role or Role.VIEWER)


def required(args: dict, name: str) -> Any:
    value = args.get(name)
    if value is None or value == "":
        raise errors.invalid(f"Missing value for required parameter '{name}'.")
    return value


def run_id_arg(args: dict) -> str:
    value = args.get("run_id") or args.get("run_uuid")
    if not value:
        raise errors.invalid("Missing value for required parameter 'run_id'.")
    return value

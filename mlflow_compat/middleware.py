"""MLflow's paths answer MLflow's error shape even before a view runs."""

from __future__ import annotations

import re

from mlflow_compat import errors

MLFLOW_PATH = re.compile(r"^/(?:mlflow/[^/]+/)?api/[23]\.0/mlflow(?:-artifacts)?/")


class MlflowNulInUrlMiddleware:
    """A NUL character in an MLflow URL is INVALID_PARAMETER_VALUE (Steward's own check, placed
    after this one, answers the other paths in Steward's shape)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if MLFLOW_PATH.match(request.path) and (
            "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", "")
            or "\x00" in request.META.get("QUERY_STRING", "")
        ):
            return errors.error_response(errors.INVALID_PARAMETER_VALUE, "The URL must not contain NUL.")
        return self.get_response(request)

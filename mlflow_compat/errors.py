"""MLflow's error shape on its paths: ``{"error_code", "message"}`` with MLflow's codes and statuses.

Steward's services raise Django's ValidationError or a core.errors domain error
(NotFound, PermissionDenied, Conflict...); here they become what an MLflow client
expects, so its own exception types (RestException with the right error_code)
come out on the client side.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    error_status,
    validation_fields,
)

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
BAD_REQUEST = "BAD_REQUEST"

STATUS = {
    INVALID_PARAMETER_VALUE: 400,
    BAD_REQUEST: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    PERMISSION_DENIED: 403,
    UNAUTHENTICATED: 401,
    REQUEST_LIMIT_EXCEEDED: 429,
    NOT_IMPLEMENTED: 501,
}


class MlflowError(DomainError):
    """A refusal already in MLflow's terms (an MLflow path's own argument checks)."""

    def __init__(self, error_code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = self.error_code = error_code
        self.status_code = status or STATUS.get(error_code, 400)


def invalid(message: str) -> MlflowError:
    return MlflowError(INVALID_PARAMETER_VALUE, message)


def not_found(message: str) -> MlflowError:
    return MlflowError(RESOURCE_DOES_NOT_EXIST, message)


def body(error_code: str, message: str) -> dict:
    return {"error_code": error_code, "message": message}


def error_response(error_code: str, message: str, status: int | None = None) -> JsonResponse:
    return JsonResponse(body(error_code, message), status=status or STATUS.get(error_code, 400))


def _classify(exc: Exception) -> tuple[str, str, int] | None:
    if isinstance(exc, MlflowError):
        return exc.error_code, exc.message, exc.status_code
    if isinstance(exc, DjangoValidationError):
        fields = validation_fields(exc)
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or "; ".join(exc.messages)
        return INVALID_PARAMETER_VALUE, message, 400
    if isinstance(exc, NotFound):
        return RESOURCE_DOES_NOT_EXIST, exc.message, 404
    if isinstance(exc, PermissionDenied):
        return PERMISSION_DENIED, exc.message, 403
    if isinstance(exc, (NotAuthenticated, AuthenticationFailed)):
        return UNAUTHENTICATED, exc.message, 401
    if isinstance(exc, Conflict):
        # MLflow answers a changed param (and any other clash with what is stored) this way.
        return INVALID_PARAMETER_VALUE, exc.message, 400
    if isinstance(exc, DomainError):
        # Too large (413), a reused Idempotency-Key (422): MLflow has no code of its own for them.
        return INVALID_PARAMETER_VALUE, exc.message, error_status(exc)
    if isinstance(exc, Http404):
        return RESOURCE_DOES_NOT_EXIST, str(exc) or "Not found.", 404
    if isinstance(exc, (DjangoPermissionDenied, exceptions.PermissionDenied)):
        return PERMISSION_DENIED, str(exc) or "Not allowed.", 403
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return UNAUTHENTICATED, str(exc.detail), 401
    if isinstance(exc, exceptions.Throttled):
        return REQUEST_LIMIT_EXCEEDED, str(exc.detail), 429
    if isinstance(exc, RequestDataTooBig):
        return INVALID_PARAMETER_VALUE, "The request body is larger than this server accepts.", 413
    if isinstance(exc, exceptions.ValidationError):
        return INVALID_PARAMETER_VALUE, _flatten(exc.detail), 400
    if isinstance(exc, exceptions.APIException):
        code = {401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: RESOURCE_DOES_NOT_EXIST}.get(
            exc.status_code, INVALID_PARAMETER_VALUE if exc.status_code < 500 else "INTERNAL_ERROR"
        )
        return code, _flatten(exc.detail), exc.status_code
    return None


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(v) for v in detail)
    return str(detail)


def mlflow_exception_handler(exc: Exception, context: dict) -> Response | None:
    found = _classify(exc)
    if found is None:
        return None
    code, message, status = found
    response = Response(body(code, message), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="steward", Basic realm="steward"'
    return response

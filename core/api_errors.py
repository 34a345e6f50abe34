"""One place that turns errors into Steward's JSON error shape.

Every API error answers ``{"error": {"code", "message", "fields"}}`` with a 4xx
status. Services raise Django's ``ValidationError`` or a core.errors domain
error; views never build error bodies themselves.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from core.errors import DomainError, PayloadTooLarge, error_status, validation_fields

__all__ = ["api_exception_handler", "domain_error_answer", "error_body", "json_error", "json_error_fields",
           "validation_fields"]


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        flat = [_flatten(v) for v in detail]
        if all(isinstance(v, str) for v in flat):
            return "; ".join(flat)
        return flat
    return str(detail)


def domain_error_answer(exc: Exception) -> tuple[int, dict] | None:
    """The status and JSON body of a domain error or a Django ValidationError; None for others."""
    if isinstance(exc, DomainError):
        return error_status(exc), error_body(exc.code, exc.message)
    if isinstance(exc, DjangoValidationError):
        fields = validation_fields(exc)
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or "; ".join(exc.messages)
        return 400, error_body("invalid", message, fields)
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if (answer := domain_error_answer(exc)) is not None:
        if isinstance(exc, DomainError):
            set_rollback()
        return Response(answer[1], status=answer[0])
    if isinstance(exc, Http404):
        return Response(error_body("not_found", str(exc) or "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", str(exc) or "Not allowed."), status=403)
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML 400; a JSON body over MAX_JSON_BYTES gets the API's shape.
        too_large = PayloadTooLarge(
            f"The request body is larger than this server accepts "
            f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes); send less per request."
        )
        return Response(error_body(too_large.code, too_large.message), status=error_status(too_large))

    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", response.data)
    code = "error"
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid"
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(detail) if isinstance(detail, dict) else {}
        if fields:
            message = "; ".join(f"{k}: {v}" for k, v in fields.items())
        else:
            message = _flatten(detail) if not isinstance(detail, str) else detail
            message = message if isinstance(message, str) else str(message)
        response.data = error_body("invalid", message, fields)
    else:
        response.data = error_body(code, str(_flatten(detail)))
    return response


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def json_error_fields(status_code: int, code: str, message: str, fields: dict[str, Any]) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status_code)

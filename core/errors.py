"""What a service or selector refuses, as plain Python exceptions.

Services and selectors raise these, never an HTTP or DRF exception: the same
refusal reaches the JSON API (core.api_errors), MLflow's wire format
(mlflow_compat.errors), a page (core.middleware.DomainErrorMiddleware), a form
(``error_text``), a Celery task or a management command, and each of those
decides how to say it.

Bad input stays Django's ``ValidationError``: it already carries per-field
messages (``{"name": ["..."]}``), forms and ``Model.full_clean`` speak it, and
the API turns its fields into the error body's ``fields``. A separate
InvalidInput class would be a second spelling of the same thing.

``code`` is the stable machine-readable name an API client sees; ``STATUS``
is the HTTP status the API and pages answer with.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


class DomainError(Exception):
    code = "error"
    default_message = "The request could not be done."

    def __init__(self, message: str | None = None):
        self.message = str(message) if message else self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does (answered alike)."""

    code = "not_found"
    default_message = "Not found."


class PermissionDenied(DomainError):
    code = "permission_denied"
    default_message = "Not allowed."


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    default_message = "Authentication credentials were not provided."


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    default_message = "Incorrect authentication credentials."


class Conflict(DomainError):
    code = "conflict"
    default_message = "The request conflicts with what is stored."


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_message = ("This Idempotency-Key was already used for another request (a different body); "
                       "send a new request with a new key.")


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    default_message = "The request body is larger than this server accepts."


# Most specific first: a subclass (registry's AliasProtected is a PermissionDenied) answers
# with its parent's status and its own code.
STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    PermissionDenied: 403,
    NotAuthenticated: 401,
    AuthenticationFailed: 401,
    Conflict: 409,
    IdempotencyKeyReused: 422,
    PayloadTooLarge: 413,
}


def error_status(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def validation_fields(exc: ValidationError) -> dict[str, str]:
    """A field-keyed ValidationError as ``{field: "message; message"}``; {} for one without fields."""
    if hasattr(exc, "error_dict"):
        return {k: "; ".join(m for e in v for m in e.messages) for k, v in exc.error_dict.items()}
    return {}


def error_text(exc: Exception) -> str:
    """One line that says why, for a form error, a flash message or an error page.

    Field errors read ``field: message``; errors that belong to no field read as
    their message alone.
    """
    if isinstance(exc, ValidationError):
        fields = validation_fields(exc)
        if fields:
            return "; ".join(v if k == NON_FIELD_ERRORS else f"{k}: {v}" for k, v in fields.items())
        return "; ".join(exc.messages)
    if isinstance(exc, DomainError):
        return exc.message
    return str(getattr(exc, "detail", exc))

"""Exceptions raised by the SDK.

A 4xx answer from the server becomes an :class:`ApiError` subclass carrying the
server's code, message and per-field details. A server that stays unreachable
(connection errors, 5xx, 429 after every retry) becomes
:class:`ServerUnavailableError`; the background sender never raises that one
but writes the data to the spool instead.
"""

from __future__ import annotations

from typing import Any


class StewardError(Exception):
    """Base class of every error the SDK raises."""


class ConfigurationError(StewardError):
    """Something needed (a URL, a token, a project) is not configured."""


class InvalidInputError(StewardError, ValueError):
    """A key or value the server would refuse, caught before it is buffered (also a ``ValueError``)."""


class InvalidTypeError(InvalidInputError, TypeError):
    """A value of the wrong type, e.g. the string ``"0.3"`` as a metric (also a ``TypeError``)."""


class AmbiguousIdError(StewardError, LookupError):
    """A run id prefix fits several runs; ``candidates`` describes each of them."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.prefix = prefix
        self.candidates = candidates
        lines = "\n  ".join(candidates)
        super().__init__(
            f"The id prefix {prefix!r} fits {len(candidates)} runs; give more characters:\n  {lines}"
        )


class ServerUnavailableError(StewardError):
    """The server could not be reached, or kept answering 5xx/429, until the retry budget ran out."""


class ApiError(StewardError):
    """The server refused a request (a 4xx answer).

    ``status`` is the HTTP status, ``code`` and ``message`` come from the
    server's ``{"error": {"code", "message", "fields"}}`` body and ``fields``
    names the offending fields.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, Any] | None = None,
        *,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{status} {code}: {message}{where}")


class InvalidRequestError(ApiError):
    """400: the server rejected a value; ``fields`` says which."""


class AuthenticationError(ApiError):
    """401: the token is missing, wrong, expired or revoked. Run ``steward login``."""


class PermissionDeniedError(ApiError):
    """403: the project is visible but your role is too low for this."""


class NotFoundError(ApiError):
    """404: no such project, run or artifact, or one you cannot see."""


class ConflictError(ApiError):
    """409: the request conflicts with what is stored (e.g. a param re-logged with another value)."""


class PayloadTooLargeError(ApiError):
    """413: the request body is larger than the server accepts."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
}


def api_error(status: int, body: Any, *, method: str = "", path: str = "", text: str = "") -> ApiError:
    """Build the right :class:`ApiError` subclass from a status and the server's JSON body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or "")
        fields = error.get("fields") if isinstance(error.get("fields"), dict) else {}
    else:
        code, fields = "error", {}
        message = (text or "").strip()[:500] or f"HTTP {status}"
    cls = _BY_STATUS.get(status, ApiError)
    return cls(status, code, message, fields, method=method, path=path)

"""How an MLflow client proves who it is: MLFLOW_TRACKING_TOKEN as a Bearer token (Steward's
own), or MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD as Basic with the token as password."""

from __future__ import annotations

import base64
import binascii

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts import services, throttling

INVALID = "Invalid, expired or revoked token."


class BasicTokenAuthentication(authentication.BaseAuthentication):
    """Basic auth whose password is an API token of the named user (never an account password:
    passwords stay behind the login page and its lockout)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        throttling.token_failure_check(request)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
        username, sep, token = decoded.partition(":")
        found = services.api_token_authenticate(raw=token, now=timezone.now()) if sep and token else None
        if found is None or found.user.get_username() != username:
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed(
                INVALID + " With Basic auth, the password is a Steward API token of that user."
            )
        return (found.user, found)

    def authenticate_header(self, request) -> str:
        return 'Basic realm="steward"'

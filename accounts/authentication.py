from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts import services, throttling

BEARER = "Bearer"
MALFORMED = "Authorization header must be 'Bearer <token>'."


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value.

    None when there is no header or it names another scheme; AuthenticationFailed
    when it is blank (``"\\xa0".split()`` is empty), says Bearer without exactly one
    token after it, or holds characters no token has (tokens are printable ASCII).
    """
    if not header:
        return None
    parts = header.split()
    if not parts:
        raise exceptions.AuthenticationFailed(MALFORMED)
    if parts[0] != BEARER:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(MALFORMED)
    token = parts[1]
    if not (token.isascii() and token.isprintable()):
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
    return token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = BEARER

    def authenticate(self, request):
        # Read as the server gave it (a str): DRF's get_authorization_header()
        # encodes it to latin-1 first, which fails on any other character.
        try:
            token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        except exceptions.AuthenticationFailed:
            throttling.token_failure_check(request)
            throttling.token_failure_record(request)
            raise
        if token is None:
            return None
        throttling.token_failure_check(request)
        found = services.api_token_authenticate(raw=token, now=timezone.now())
        if found is None:
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return (found.user, found)

    def authenticate_header(self, request) -> str:
        return self.keyword

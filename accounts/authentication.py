from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts import services, throttling
from accounts.selectors import BEARER, INVALID_TOKEN, bearer_token_parse
from core.errors import AuthenticationFailed


def request_bearer_token(request) -> str | None:
    """The bearer token of a request (a DRF or a plain Django one), read once for the API and serving.

    None without one (another scheme is left to the other authenticators); a
    malformed header is AuthenticationFailed and counts as a failed token. An
    address refused for too many failed tokens is refused before any lookup.
    """
    # Read as the server gave it (a str): DRF's get_authorization_header()
    # encodes it to latin-1 first, which fails on any other character.
    try:
        token = bearer_token_parse(request.META.get("HTTP_AUTHORIZATION"))
    except AuthenticationFailed as exc:
        throttling.token_failure_check(request)
        throttling.token_failure_record(request)
        # DRF's own type: its authentication step only turns an APIException into a 401.
        raise exceptions.AuthenticationFailed(exc.message) from None
    if token is not None:
        throttling.token_failure_check(request)
    return token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = BEARER

    def authenticate(self, request):
        token = request_bearer_token(request)
        if token is None:
            return None
        found = services.api_token_authenticate(raw=token, now=timezone.now())
        if found is None:
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return (found.user, found)

    def authenticate_header(self, request) -> str:
        return self.keyword

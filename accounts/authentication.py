from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts import services, throttling


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        throttling.token_failure_check(request)
        if len(parts) != 2:
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = services.api_token_authenticate(raw=parts[1], now=timezone.now())
        if token is None:
            throttling.token_failure_record(request)
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return (token.user, token)

    def authenticate_header(self, request) -> str:
        return self.keyword

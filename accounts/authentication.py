from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts import services, throttling
from accounts.models import Project, Role
from accounts.selectors import (
    BEARER,
    INVALID_TOKEN,
    ProjectAccess,
    bearer_token_parse,
    project_access_resolve,
)
from core.errors import AuthenticationFailed, NotAuthenticated, PermissionDenied


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


# Who asked, as request.user holds them after request_project_access.
_USER_FIELDS = "u.username, u.is_staff"


def request_project_access(request, *, slug: str, min_role: Role, columns: str = "", joins: str = "",
                           params: tuple = ()) -> tuple[ProjectAccess, Project, tuple]:
    """Who is asking and may they act in project ``slug`` with ``min_role``, for a view on a hot path.

    A bearer token, its user, the project and the membership are read in one
    query that may carry the view's own ``joins`` and ``columns`` (see
    accounts.selectors.project_access_resolve) instead of one query each;
    without a token the request's other authenticators decide who the user is
    (a session, with DRF's CSRF check). The answers are the API's everywhere:
    401 for no credentials or a token that is not usable (counted as a failed
    token), 404 for a project the user may not read, 403 for a role below
    ``min_role``.

    Returns the access, the project (its id and slug loaded, the rest read if
    asked for) and the view's columns. ``request.user`` is the user who asked,
    with their id and username loaded.
    """
    token = request_bearer_token(request)
    user = None if token is not None else request.user
    now = timezone.now()
    try:
        access, row = project_access_resolve(
            slug=slug, token=token, user=user, joins=joins, params=params, now=now,
            columns=f"{_USER_FIELDS}, {columns}" if columns else _USER_FIELDS,
        )
    except AuthenticationFailed as exc:
        throttling.token_failure_record(request)  # as BearerTokenAuthentication counts it
        # DRF's own types, as its authentication step raises them: the 401 names the scheme
        # (WWW-Authenticate: Bearer).
        raise exceptions.AuthenticationFailed(exc.message) from None
    except NotAuthenticated as exc:
        raise exceptions.NotAuthenticated(exc.message) from None
    if access.token_id is not None:
        services.api_token_used(token_id=access.token_id, last_used_at=access.token_last_used_at, now=now)
        # Values in the model's field order (from_db's rule); a usable token's user is active.
        request.user = get_user_model().from_db(
            connection.alias, ["id", "username", "is_staff", "is_active"],
            [access.user_id, row[0], bool(row[1]), True],
        )
    if access.role < min_role:
        raise PermissionDenied(
            f"This needs the {Role(min_role).label} role in '{slug}'; you are {access.role.label}."
        )
    project = Project.from_db(connection.alias, ["id", "slug"], [access.project_id, slug])
    project.user_role = access.role
    return access, project, row[2:]

"""Who is asking, and may they read this project: the one definition of each rule.

The REST API (``accounts.authentication``, ``accounts.permissions``) and real-time
serving (``registry.serving``) both answer from here, so a token or a membership
means the same thing on every path:

- a bearer header is parsed by ``bearer_token_parse``;
- a token is usable when ``token_usable`` says so (not revoked, not expired, its
  user active);
- a user's role in a project is ``role_effective`` (staff read every project as
  owners; others need a membership; an inactive user has none), and a project is
  readable with any role.

What a refusal answers, everywhere: no credentials, or a token that is not
usable, is 401, checked before anything about the project (so a guess learns
nothing about which projects exist); a user who may not read the project, or a
project that does not exist, is 404 (so its existence is not revealed).

Serving asks all of it in one prepared statement (``project_access_resolve``),
since it runs for every prediction; the ORM path asks for the same columns and
both hand them to the same two functions above.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import ApiToken, Membership, Project, Role, token_hash
from core.errors import AuthenticationFailed, NotAuthenticated, NotFound

BEARER = "Bearer"
MALFORMED = "Authorization header must be 'Bearer <token>'."
INVALID_TOKEN = "Invalid, expired or revoked token."  # noqa: S105 - a message, not a secret
NO_PROJECT = "No such project."


def bearer_token_parse(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value.

    None when there is no header or it names another scheme (left to the other
    authenticators: a session, MLflow's Basic); AuthenticationFailed when it is
    blank (``"\\xa0".split()`` is empty), says Bearer without exactly one token
    after it, or holds characters no token has (tokens are printable ASCII).
    """
    if not header:
        return None
    parts = header.split()
    if not parts:
        raise AuthenticationFailed(MALFORMED)
    if parts[0] != BEARER:
        return None
    if len(parts) != 2:
        raise AuthenticationFailed(MALFORMED)
    token = parts[1]
    if not (token.isascii() and token.isprintable()):
        raise AuthenticationFailed(INVALID_TOKEN)
    return token


def token_usable(*, revoked_at: dt.datetime | None, expires_at: dt.datetime | None, user_active: bool,
                 now: dt.datetime) -> bool:
    return revoked_at is None and bool(user_active) and (expires_at is None or expires_at > now)


def role_effective(*, is_active: bool, is_staff: bool, membership_role: int | None) -> Role | None:
    """A user's role in a project: staff are owners everywhere, others what their membership says."""
    if not is_active:
        return None
    if is_staff:
        return Role.OWNER
    return Role(membership_role) if membership_role is not None else None


def api_token_find(*, raw: str, now: dt.datetime) -> ApiToken | None:
    """The usable token whose raw value is ``raw`` (its user loaded), or None."""
    token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw)).first()
    if token is None or not token_usable(revoked_at=token.revoked_at, expires_at=token.expires_at,
                                         user_active=token.user.is_active, now=now):
        return None
    return token


def role_for(user, project: Project) -> Role | None:
    """``user``'s role in ``project`` (None: they may not read it), remembered on the user object
    for the rest of the request."""
    if user is None or not user.is_authenticated:
        return None
    if not user.is_active or user.is_staff:
        return role_effective(is_active=user.is_active, is_staff=user.is_staff, membership_role=None)
    cache = getattr(user, "_steward_roles", None)
    if cache is None:
        cache = user._steward_roles = {}
    if project.pk not in cache:
        membership_role = (
            Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
        )
        cache[project.pk] = role_effective(is_active=True, is_staff=False, membership_role=membership_role)
    return cache[project.pk]


def project_readable(user, project: Project) -> bool:
    return role_for(user, project) is not None


@dataclass(frozen=True)
class ProjectAccess:
    """Who asked and what they may do in the project, as ``project_access_resolve`` found it."""

    user_id: int
    project_id: int
    role: Role
    token_id: int | None
    token_last_used_at: dt.datetime | None


# The leading columns of every access query, in this order (the "key" ones are the token's);
# the caller's own follow them.
_USER_COLUMNS = "u.id, u.is_active, u.is_staff, p.id, ms.role"
_KEY_COLUMNS = "t.id, t.revoked_at, t.expires_at, t.last_used_at"
_NO_KEY_COLUMNS = "NULL, NULL, NULL, NULL"
_ACCESS_WIDTH = 9


@functools.lru_cache(maxsize=32)
def project_access_sql(*, by_token: bool, columns: str = "", joins: str = "") -> str:
    """One statement that answers who is asking and their membership in the project.

    Parameters, in order: the project's slug, then those of the caller's
    ``joins`` (which may refer to the project as ``p``), then the credential: a
    token's hash, or a user's id. It returns no row when the token or user does
    not exist, else the access columns followed by the caller's ``columns``
    (NULL where the project or its joined rows do not exist).
    """
    users = get_user_model()._meta.db_table
    extra = f", {columns}" if columns else ""
    tail = (f"LEFT JOIN {Project._meta.db_table} p ON p.slug = %s "
            f"LEFT JOIN {Membership._meta.db_table} ms ON ms.project_id = p.id AND ms.user_id = u.id "
            f"{joins} ")
    if by_token:
        return (f"SELECT {_USER_COLUMNS}, {_KEY_COLUMNS}{extra} FROM {ApiToken._meta.db_table} t "
                f"JOIN {users} u ON u.id = t.user_id {tail}WHERE t.key_hash = %s")
    return f"SELECT {_USER_COLUMNS}, {_NO_KEY_COLUMNS}{extra} FROM {users} u {tail}WHERE u.id = %s"


# Only what is asked for explicitly is prepared: Django's own cursors bind on the client.
_PREPARE_ONLY_WHEN_ASKED = 2**31 - 1


def _fetch_one(sql: str, params: list):
    if connection.vendor == "postgresql":
        import psycopg

        # A prepared statement, so PostgreSQL plans this join once per
        # connection instead of on every request (planning it costs ten times
        # more than running it). Django opens connections with prepared
        # statements off (prepare_threshold=None, for connection poolers), which
        # would make prepare=True a no-op. A pooler that loses the statement, or
        # a migration that changes a column under it, turns preparing off for
        # the rest of that connection's life.
        connection.ensure_connection()
        raw = connection.connection
        # Kept per connection: building a psycopg cursor costs more than running this query.
        cursor = getattr(connection, "_access_cursor", None)
        if cursor is None or cursor.closed or cursor.connection is not raw:
            if raw.prepare_threshold is None:
                raw.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED
            cursor = connection._access_cursor = psycopg.Cursor(raw)
            connection._access_prepare = True
        with connection.wrap_database_errors:
            started = time.monotonic()
            try:
                cursor.execute(sql, params, prepare=connection._access_prepare)
            except (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement,
                    psycopg.errors.FeatureNotSupported):  # "cached plan must not change result type"
                connection._access_prepare = False
                cursor.execute(sql, params, prepare=False)
            if connection.queries_logged:
                # Counted with Django's own queries (tests that pin how many a request makes).
                connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _aware(value):
    if isinstance(value, str):  # SQLite hands timestamps back as text
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def project_access_resolve(*, slug: str, token: str | None = None, user=None, columns: str = "",
                           joins: str = "", params: tuple = (), now: dt.datetime | None = None,
                           ) -> tuple[ProjectAccess, tuple]:
    """Who is asking (a bearer token, or an authenticated user) and may they read project ``slug``,
    in one query that may carry the caller's own ``joins`` and ``columns`` (see
    ``project_access_sql``). Returns the access and the caller's columns.

    401 (AuthenticationFailed / NotAuthenticated) when the token is not usable or
    there is no user; 404 when the user may not read the project. The token's
    last use is not recorded here (``accounts.services.api_token_used`` does).
    """
    if token is None and (user is None or not user.is_authenticated):
        raise NotAuthenticated()
    sql = project_access_sql(by_token=token is not None, columns=columns, joins=joins)
    credential = token_hash(token) if token is not None else user.pk
    row = _fetch_one(sql, [slug, *params, credential])
    now = now or timezone.now()
    if row is None:
        if token is not None:
            raise AuthenticationFailed(INVALID_TOKEN)
        raise NotAuthenticated()
    (user_id, is_active, is_staff, project_id, membership_role,
     token_id, revoked_at, expires_at, last_used_at) = row[:_ACCESS_WIDTH]
    if token is not None and not token_usable(revoked_at=revoked_at, expires_at=_aware(expires_at),
                                              user_active=is_active, now=now):
        raise AuthenticationFailed(INVALID_TOKEN)
    if token is None and not is_active:
        raise NotAuthenticated()
    role = role_effective(is_active=bool(is_active), is_staff=bool(is_staff), membership_role=membership_role)
    if project_id is None or role is None:
        raise NotFound(NO_PROJECT)
    access = ProjectAccess(user_id=user_id, project_id=project_id, role=role, token_id=token_id,
                           token_last_used_at=_aware(last_used_at))
    return access, tuple(row[_ACCESS_WIDTH:])


# --- PII ----------------------------------------------------------------------------------
# Which values of a column a reader may see. Every output that carries column values (a
# dataset's preview, profile and validation report, a model's signature and example, the
# version page's "try it" form, explanation rows, fairness groups, monitor histograms) asks
# ``pii_hidden`` which columns to mask for this reader, and masks exactly those.

PII_MASK = "***"


def pii_visible(user, project: Project) -> bool:
    """Whether ``user`` may see values of PII-flagged columns in ``project``: editors and above."""
    role = role_for(user, project)
    return role is not None and role >= Role.EDITOR


def pii_columns(*column_lists, names=()) -> frozenset[str]:
    """The PII columns among column lists (``[{"name", "pii", ...}]``: a dataset version's, a
    model signature's), with ``names`` already known to be PII added."""
    found = set(names)
    for columns in column_lists:
        found.update(c["name"] for c in columns or () if c.get("pii"))
    return frozenset(found)


def pii_hidden(user, project: Project, *column_lists, names=()) -> frozenset[str]:
    """The columns whose values ``user`` may not see in an output built from ``column_lists``
    (and ``names``): none for a role that may see PII, else every PII column among them."""
    if pii_visible(user, project):
        return frozenset()
    return pii_columns(*column_lists, names=names)


def pii_mask_record(record: dict, hidden: frozenset[str], mask=None) -> dict:
    """A ``{column: value}`` mapping with the values of ``hidden`` columns replaced by ``mask``."""
    if not hidden:
        return record
    return {k: (mask if k in hidden else v) for k, v in record.items()}


def pii_mask_mapping(mapping: dict, hidden: frozenset[str]) -> dict:
    """A ``{column: anything derived from its values}`` mapping without the ``hidden`` columns."""
    if not hidden:
        return mapping
    return {k: v for k, v in mapping.items() if k not in hidden}


def pii_mask_rows(rows, names: list[str], hidden: frozenset[str], mask=PII_MASK) -> list[list]:
    """Rows of values in the order of ``names``, the ``hidden`` columns' values replaced by ``mask``."""
    positions = {i for i, name in enumerate(names) if name in hidden}
    if not positions:
        return [list(row) for row in rows]
    return [[mask if i in positions else v for i, v in enumerate(row)] for row in rows]

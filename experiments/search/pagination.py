"""Page tokens: a keyset cursor over a search's sort order.

A token carries the sort values and id of the last run shown, so the next page
starts right after it even while new runs arrive. It also carries a fingerprint
of the search, so a token is only honoured by the search that made it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import uuid
from typing import Any

from django.core.exceptions import ValidationError

from accounts.models import Project
from experiments.search.parser import ID, NUMBER, TIME, OrderKey

MAX_PAGE_TOKEN_LENGTH = 20_000


def page_cut(
    rows: list[dict], *, max_results: int, order: list[OrderKey], names: list[str], fingerprint: str,
) -> tuple[list[dict], str | None]:
    """The page without its lookahead row, and the token of the next page if there is one.

    ``rows`` hold the run's ``id`` and each sort key's value under its name in ``names``.
    """
    if len(rows) <= max_results:
        return rows, None
    page = rows[:max_results]
    last = page[-1]
    values = [_encode_value(last[name], key.value_type) for name, key in zip(names, order, strict=True)]
    return page, _token_encode(values, last["id"], fingerprint)


def _encode_value(value: Any, vtype: str) -> Any:
    if value is None:
        return None
    if vtype == NUMBER:
        return "Infinity" if value == math.inf else "-Infinity" if value == -math.inf else value
    if vtype == TIME:
        return value.isoformat()
    return str(value)


def _decode_value(raw: Any, key: OrderKey) -> Any:
    """A sort value from a page token, checked as strictly as user input."""
    if raw is None:
        if not key.nullable:
            raise ValueError("null for a non-null key")
        return None
    vtype = key.value_type
    if vtype == NUMBER:
        if raw in ("Infinity", "-Infinity"):
            return math.inf if raw == "Infinity" else -math.inf
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValueError("not a number")
        return float(raw)
    if not isinstance(raw, str) or "\x00" in raw:
        raise ValueError("not a string")
    if vtype == TIME:
        value = dt.datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError("naive time")
        return value
    if vtype == ID:
        return uuid.UUID(raw)
    return raw


def fingerprint(project: Project, experiment_ids, filter_string: str, order: list[OrderKey]) -> str:
    ids = sorted(experiment_ids) if experiment_ids is not None else None
    shape = [project.pk, ids, filter_string, [[k.kind, k.key, k.descending] for k in order]]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def _token_encode(values: list, last_id, fingerprint: str) -> str:
    raw = json.dumps({"v": values, "id": str(last_id), "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def token_decode(token: str, order: list[OrderKey], fingerprint: str) -> tuple[list, uuid.UUID]:
    bad = ValidationError({"page_token": "Not a valid page token; start again without one."})
    if not isinstance(token, str) or len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or not isinstance(data.get("v"), list):
            raise bad
        if data.get("q") != fingerprint:
            raise ValidationError(
                {"page_token": "This page token belongs to a different search (filter, order or "
                               "experiments changed); start again without one."}
            )
        if len(data["v"]) != len(order):
            raise bad
        values = [_decode_value(raw, key) for raw, key in zip(data["v"], order, strict=True)]
        return values, uuid.UUID(data["id"])
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
        raise bad from None

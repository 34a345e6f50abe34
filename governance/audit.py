"""The append-only, hash-chained audit log: the sink behind ``core.audit.audit_record``.

Each row's hash is sha256 over a canonical JSON of its values and the previous row's hash, so
changing, inserting or removing any row breaks every link after it. ``audit_chain_verify`` walks
the chain; ``manage.py verify_audit_log`` reports the first broken link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from core.audit import AuditEntry
from governance.models import AUDIT_GENESIS_HASH, AuditEvent

# Any constant works; it only has to be the same for every process appending to the log.
AUDIT_LOCK_KEY = 0x5354_4155_4449_54  # "STAUDIT"


def _plain(value: Any) -> Any:
    """A JSON value that survives a round trip through the database unchanged (JSONB has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set) else items
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def audit_event_hash(event: AuditEvent) -> str:
    canonical = json.dumps(
        {
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "project_id": event.project_id,
            "before": event.before,
            "after": event.after,
            "ip": event.ip,
            "created_at": _timestamp(event.created_at),
            "prev_hash": event.prev_hash,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_event_append(entry: AuditEntry) -> AuditEvent:
    """Append one event at the end of the chain, inside the caller's transaction.

    Two appends that both read the same last hash would fork the chain. On PostgreSQL a
    transaction-level advisory lock serialises appenders until the caller's transaction ends
    (so the next appender reads this row's hash once it is committed); SQLite already allows
    one writer at a time. The atomic block makes the lock hold even for a caller in autocommit.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            actor_id=entry.actor_id, actor_name=entry.actor_name or "", action=entry.action[:200],
            object_type=entry.object_type[:100], object_id=str(entry.object_id)[:200],
            project_id=entry.project_id, before=_plain(entry.before or {}), after=_plain(entry.after or {}),
            ip=(entry.ip or "")[:64],
            # Truncated to microseconds as the database stores them, so the hash recomputes.
            created_at=timezone.now().astimezone(dt.UTC),
            prev_hash=last or AUDIT_GENESIS_HASH,
        )
        event.hash = audit_event_hash(event)
        event.save()
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _events_in_order(batch: int = 2000) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=after).order_by("id")[:batch])
        if not rows:
            return
        yield from rows
        after = rows[-1].id


def audit_chain_verify() -> ChainReport:
    """Recompute every hash in id order; the first row whose link or hash is wrong is the break."""
    expected_prev = AUDIT_GENESIS_HASH
    checked = 0
    for event in _events_in_order():
        if event.prev_hash != expected_prev:
            return ChainReport(checked, ChainBreak(
                event.id, f"its prev_hash {event.prev_hash[:12]}… is not the hash of the event before it "
                          f"({expected_prev[:12]}…): a row was removed, inserted or re-chained"))
        if audit_event_hash(event) != event.hash:
            return ChainReport(checked, ChainBreak(
                event.id, "its content does not match its hash: the row was changed after it was written"))
        expected_prev = event.hash
        checked += 1
    return ChainReport(checked, None)


# --- Reading the log --------------------------------------------------------------------------

AUDIT_PAGE_DEFAULT = 50
AUDIT_PAGE_MAX = 500


def _date_bound(value: str, field: str, *, end: bool) -> dt.datetime:
    """A date (whole day, so "until" includes it) or an ISO datetime (naive means UTC)."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end else start
        moment = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise ValidationError({field: "Use a date (YYYY-MM-DD) or an ISO 8601 date and time."}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def audit_filters_clean(query) -> dict[str, Any]:
    """The filters of the audit page and API from a query dict; a bad value names its field."""
    out: dict[str, Any] = {}
    for key in ("action", "actor", "object_type", "object_id", "since", "until", "max_results", "page_token"):
        if "\x00" in (query.get(key) or ""):
            raise ValidationError({key: "Must not contain NUL characters."})
    for key in ("action", "actor", "object_type", "object_id"):
        value = (query.get(key) or "").strip()
        if len(value) > 200:
            raise ValidationError({key: "At most 200 characters."})
        if value:
            out[key] = value
    for key, end in (("since", False), ("until", True)):
        value = (query.get(key) or "").strip()
        if value:
            out[key] = _date_bound(value, key, end=end)
    if "since" in out and "until" in out and out["since"] >= out["until"]:
        raise ValidationError({"until": "Must be after 'since'."})
    size = (query.get("max_results") or "").strip()
    if size:
        if not size.isascii() or not size.isdigit() or not 1 <= int(size) <= AUDIT_PAGE_MAX:
            raise ValidationError({"max_results": f"A whole number from 1 to {AUDIT_PAGE_MAX}."})
    out["max_results"] = int(size) if size else AUDIT_PAGE_DEFAULT
    token = (query.get("page_token") or "").strip()
    if token:
        if not token.isascii() or not token.isdigit() or len(token) > 18:
            raise ValidationError({"page_token": "Not a page token this server gave out."})
        out["page_token"] = int(token)
    return out


def audit_events_query(*, project_id: int | None, filters: dict[str, Any], all_projects: bool = False):
    """Events of one project (or, for an instance administrator, all of them), newest first."""
    events = AuditEvent.objects.all() if all_projects else AuditEvent.objects.filter(project_id=project_id)
    action = filters.get("action")
    if action:
        # "alias" means every alias.* action; "alias.moved" means exactly that one.
        if "." in action:
            events = events.filter(action=action)
        else:
            events = events.filter(action__startswith=action + ".")
    if filters.get("actor"):
        events = events.filter(actor_name=filters["actor"])
    if filters.get("object_type"):
        events = events.filter(object_type=filters["object_type"])
    if filters.get("object_id"):
        events = events.filter(object_id=filters["object_id"])
    if filters.get("since"):
        events = events.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(created_at__lt=filters["until"])
    return events.order_by("-id")


def audit_events_page(events, filters: dict[str, Any]) -> tuple[list[AuditEvent], str | None]:
    """One page by keyset on id (stable while new events arrive); the token of the next page."""
    if "page_token" in filters:
        events = events.filter(id__lt=filters["page_token"])
    size = filters["max_results"]
    rows = list(events[: size + 1])
    if len(rows) > size:
        return rows[:size], str(rows[size - 1].id)
    return rows, None


def audit_event_output(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "actor": event.actor_name or None,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "project_id": event.project_id,
        "before": event.before,
        "after": event.after,
        "ip": event.ip or None,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


CSV_COLUMNS = ["id", "created_at", "actor_id", "actor", "action", "object_type", "object_id", "project_id",
               "ip", "before", "after", "prev_hash", "hash"]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    # A spreadsheet runs a cell that starts like a formula; the quote makes it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def audit_events_csv_rows(events, batch: int = 2000) -> Iterator[list[Any]]:
    """The header and every row, read in keyset batches so a large log is never held in memory."""
    yield CSV_COLUMNS
    before: int | None = None
    while True:
        chunk = events if before is None else events.filter(id__lt=before)
        rows = list(chunk[:batch])
        if not rows:
            return
        for event in rows:
            body = audit_event_output(event)
            yield [_csv_cell(body[c]) for c in CSV_COLUMNS]
        before = rows[-1].id

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

"""The audit hook: lower apps report governance-relevant actions here; governance stores them.

Apps depend downward only, so accounts and registry cannot import the audit log. They call
``audit_record`` inside the transaction that makes the change; the sink that governance
registers at start-up writes the hash-chained row in that same transaction, so the change and
its record commit or roll back together. With no sink registered (an app list without
governance) the call does nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The request's client address, set by core.middleware.RequestContextMiddleware for the
# length of one request; None in workers and management commands.
request_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_ip", default=None)


@dataclass(frozen=True)
class AuditEntry:
    action: str  # dotted, e.g. "token.created", "alias.moved", "pickle_hash.trusted"
    actor_id: int | None
    actor_name: str
    object_type: str  # e.g. "registry.ModelVersion"
    object_id: str
    project_id: int | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None


_sinks: list[Callable[[AuditEntry], None]] = []


def audit_sink_register(sink: Callable[[AuditEntry], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def audit_record(
    *,
    action: str,
    actor,
    object_type: str,
    object_id: Any,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Report one action. Call it inside the transaction that makes the change."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    entry = AuditEntry(
        action=action,
        actor_id=actor.pk if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        object_type=object_type,
        object_id=str(object_id),
        project_id=project_id,
        before=before or {},
        after=after or {},
        ip=request_ip.get(),
    )
    for sink in _sinks:
        sink(entry)

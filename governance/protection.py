"""Governed changes to which aliases are protected.

Adding an alias to a model's protected list stays a direct owner action (registry). Taking one
off is a request: an owner asks, with a justification, and a project member with the reviewer
role or above — never the requester — approves it. Only then does the registry drop the alias
from the list, through ``model_protected_aliases_set(..., approval=request)``. Every step is on
the audit log, in the transaction of the change it records.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role
from accounts.permissions import role_for
from core.audit import audit_record
from core.errors import Conflict, NotFound, PermissionDenied
from governance.models import ProtectionChangeRequest, ProtectionChangeStatus
from registry.models import RegisteredModel
from registry.services import alias_name_clean, model_protected_aliases_set

MAX_TEXT = 5000
DECISIONS = ("approve", "reject")


def _text(value: Any, field: str, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "Must be text."})
    value = value.strip()
    if "\x00" in value:
        raise ValidationError({field: "Must not contain NUL characters."})
    if required and not value:
        raise ValidationError({field: "This is required."})
    if len(value) > MAX_TEXT:
        raise ValidationError({field: f"At most {MAX_TEXT} characters."})
    return value


def _audit(change: ProtectionChangeRequest, action: str, actor, **after) -> None:
    audit_record(
        action=action, actor=actor, object_type="governance.ProtectionChangeRequest", object_id=change.pk,
        project_id=change.model.project_id,
        after={"model": change.model.name, "alias": change.alias, "status": change.status, **after},
    )


def protection_change_request_create(
    *, model: RegisteredModel, alias: Any, justification: Any, user
) -> ProtectionChangeRequest:
    """An owner asks to take ``alias`` off the model's protected aliases."""
    role = role_for(user, model.project)
    if role is None:
        raise NotFound("No such model.")
    if role < Role.OWNER:
        raise PermissionDenied("Only an owner of the project can ask to remove an alias's protection.")
    alias = alias_name_clean(alias)
    justification = _text(justification, "justification", required=True)
    if not model.is_protected(alias):
        raise ValidationError({"alias": f"'{alias}' is not a protected alias of {model.name}."})
    try:
        with transaction.atomic():
            change = ProtectionChangeRequest.objects.create(
                model=model, alias=alias, justification=justification, requested_by=user,
            )
            _audit(change, "protection_change.requested", user, justification=justification)
    except IntegrityError:
        raise Conflict(
            f"A request to unprotect '{alias}' on {model.name} is already waiting for a decision."
        ) from None
    return change


def _locked_pending(change_id: int) -> ProtectionChangeRequest:
    change = (ProtectionChangeRequest.objects.select_for_update().select_related("model__project")
              .get(pk=change_id))
    if change.status != ProtectionChangeStatus.PENDING:
        raise Conflict(f"This request is already {change.status}.")
    return change


def protection_change_request_decide(
    *, change: ProtectionChangeRequest, user, decision: Any, comment: Any = ""
) -> ProtectionChangeRequest:
    """A reviewer (or above) other than the requester approves or rejects; approval unprotects."""
    if decision not in DECISIONS:
        raise ValidationError({"decision": "Must be 'approve' or 'reject'."})
    comment = _text(comment, "comment", required=decision == "reject")
    with transaction.atomic():
        # Locked, so two reviewers deciding at once decide once.
        change = _locked_pending(change.pk)
        role = role_for(user, change.model.project)
        if role is None or role < Role.REVIEWER:
            raise PermissionDenied("Deciding a protection change needs the reviewer role or above.")
        if change.requested_by_id == user.pk:
            raise PermissionDenied("You asked for this change: another reviewer must decide it.")
        change.decided_by, change.decided_at, change.comment = user, timezone.now(), comment
        if decision == "approve":
            change.status = ProtectionChangeStatus.APPROVED
            change.save(update_fields=["status", "decided_by", "decided_at", "comment"])
            model = change.model
            remaining = [a for a in (model.protected_aliases or []) if a != change.alias]
            if remaining != list(model.protected_aliases or []):
                model_protected_aliases_set(model=model, aliases=remaining, user=user, approval=change)
            _audit(change, "protection_change.approved", user, comment=comment,
                   requested_by=change.requested_by.get_username() if change.requested_by else None)
        else:
            change.status = ProtectionChangeStatus.REJECTED
            change.save(update_fields=["status", "decided_by", "decided_at", "comment"])
            _audit(change, "protection_change.rejected", user, comment=comment)
    return change


def protection_change_request_withdraw(*, change: ProtectionChangeRequest, user) -> ProtectionChangeRequest:
    with transaction.atomic():
        change = _locked_pending(change.pk)
        if change.requested_by_id != user.pk:
            raise PermissionDenied("Only the requester can withdraw a request.")
        change.status, change.decided_at = ProtectionChangeStatus.WITHDRAWN, timezone.now()
        change.save(update_fields=["status", "decided_at"])
        _audit(change, "protection_change.withdrawn", user)
    return change


def protection_change_for_user(user, change_id: int, min_role: Role = Role.VIEWER) -> ProtectionChangeRequest:
    """A request by id, 404 unless the user can see its project."""
    change = ProtectionChangeRequest.objects.select_related(
        "model__project", "requested_by", "decided_by").filter(pk=change_id).first()
    if change is None:
        raise NotFound("No such protection change request.")
    role = role_for(user, change.model.project)
    if role is None:
        raise NotFound("No such protection change request.")
    if role < min_role:
        raise PermissionDenied(f"This needs the {Role(min_role).label} role.")
    return change


def protection_change_output(change: ProtectionChangeRequest) -> dict:
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {
        "id": change.pk,
        "project": change.model.project.slug,
        "model": change.model.name,
        "alias": change.alias,
        "status": change.status,
        "justification": change.justification,
        "requested_by": change.requested_by.get_username() if change.requested_by_id else None,
        "decided_by": change.decided_by.get_username() if change.decided_by_id else None,
        "comment": change.comment,
        "created_at": iso(change.created_at),
        "decided_at": iso(change.decided_at),
    }

"""Promotion requests and reviews: the only way a protected alias moves.

An editor asks for a protected alias to move to a version, with a justification. The request is
stored whatever its checks say and re-evaluated whenever something it depends on changes (a
review, the version's file checks, its fairness audit or explanation finishing). It moves the
alias the moment every check has passed and enough eligible reviewers have approved the exact
files under review; the move, the request's new status and the audit entry commit together.

Locks: every write here takes the registered model's row first, then the request's row. One
order everywhere means two writers never wait on each other in a cycle; the model row also
serialises two approvals arriving at once, so the second sees the first's effect and the alias
moves once.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from accounts.permissions import role_for
from core.audit import audit_record
from core.errors import Conflict, PermissionDenied
from governance import notifications
from governance.models import (
    OPEN_STATUSES,
    PromotionKind,
    PromotionRequest,
    PromotionStatus,
    Review,
    ReviewDecision,
)
from governance.policies import (
    FAILED,
    PENDING,
    champion_version,
    checks_state,
    policy_checks,
    policy_for_model,
)
from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel

MAX_TEXT = 10_000


def _text(value: Any, field: str, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "Give a text."})
    value = value.strip()
    if required and not value:
        raise ValidationError({field: "This is required."})
    if len(value) > MAX_TEXT:
        raise ValidationError({field: f"At most {MAX_TEXT:,} characters."})
    return value


def _lock(request_id: int) -> PromotionRequest:
    """The request with its model's row and then its own row locked (see the module docstring)."""
    model_id = PromotionRequest.objects.filter(pk=request_id).values_list("model_id", flat=True).first()
    if model_id is None:
        raise PromotionRequest.DoesNotExist(request_id)
    RegisteredModel.objects.select_for_update().get(pk=model_id)
    return (PromotionRequest.objects.select_for_update(of=("self",))
            .select_related("model", "model__project", "version", "requester").get(pk=request_id))


def _audit(action: str, request: PromotionRequest, actor, before: dict | None = None,
           after: dict | None = None) -> None:
    audit_record(action=action, actor=actor, object_type="governance.PromotionRequest", object_id=request.pk,
                 project_id=request.model.project_id, before=before or {},
                 after={"model": request.model.name, "alias": request.alias,
                        "version": request.version.version if request.version_id else None,
                        "status": request.status} | (after or {}))


# --- Who may approve ------------------------------------------------------------------------


def review_refusal(*, request: PromotionRequest, user) -> str | None:
    """Why ``user`` may not review ``request``, or None when they may."""
    role = role_for(user, request.model.project)
    if role is None or role < Role.REVIEWER:
        return "Only project members with the reviewer role or above review promotion requests."
    if request.requester_id == user.pk:
        return "You asked for this promotion: someone else must review it."
    if request.version_id and request.version.author_id == user.pk:
        return "You are the author of this version: someone else must review it."
    return None


def approvals_in_force(request: PromotionRequest) -> list[Review]:
    """One approval per reviewer whose latest word is "approve", made on the version's current files,
    by someone who may still approve (role kept, not the requester or the author)."""
    # The hashes as stored now, not as a cached instance remembers them.
    sha256, onnx_sha256 = ModelVersion.objects.filter(pk=request.version_id).values_list(
        "sha256", "onnx_sha256").get()
    latest: dict[int, Review] = {}
    for review in request.reviews.select_related("reviewer").order_by("created_at", "id"):
        if review.reviewer_id is not None:
            latest[review.reviewer_id] = review
    counted = []
    for review in latest.values():
        if review.decision != ReviewDecision.APPROVE:
            continue
        if (review.version_sha256, review.version_onnx_sha256) != (sha256, onnx_sha256 or ""):
            continue  # pinned to files that are no longer the version's: void
        if review_refusal(request=request, user=review.reviewer) is not None:
            continue
        counted.append(review)
    return counted


# --- Evaluation and the move ----------------------------------------------------------------


def _evaluate(request: PromotionRequest, actor, *, announce: bool = True) -> PromotionRequest:
    """Re-judge a locked, open request; move the alias when everything is in place."""
    version = request.version
    version.refresh_from_db()
    policy = policy_for_model(request.model)
    checks = policy_checks(policy=policy, version=version, alias=request.alias)
    state = checks_state(checks)
    old_status = request.status
    request.checks = checks
    request.status = {FAILED: PromotionStatus.BLOCKED, PENDING: PromotionStatus.CHECKS_RUNNING}.get(
        state, PromotionStatus.IN_REVIEW)
    approvals = approvals_in_force(request)
    request.updated_at = timezone.now()
    if request.status == PromotionStatus.IN_REVIEW and len(approvals) >= policy.approvals_required:
        _move(request, actor=actor or approvals[-1].reviewer, approvals=approvals)
        return request
    request.save(update_fields=["checks", "status", "updated_at"])
    if request.status != old_status and announce:
        _audit("promotion.status_changed", request, actor, before={"status": old_status},
               after={"reasons": request.reasons})
        if request.status == PromotionStatus.BLOCKED:
            notifications.notify_requester(request, event="blocked")
        elif request.status == PromotionStatus.IN_REVIEW and old_status != PromotionStatus.IN_REVIEW:
            notifications.notify_reviewers(request, event="ready_for_review")
    return request


def _move(request: PromotionRequest, *, actor, approvals: list[Review]) -> None:
    model = request.model
    previous = champion_version(model, request.alias)
    registry_services.alias_set_protected(model=model, alias=request.alias, version=request.version,
                                          approval=request, actor=actor)
    now = timezone.now()
    request.status, request.decided_at, request.updated_at = PromotionStatus.APPROVED, now, now
    request.previous_version = previous
    request.save(update_fields=["checks", "status", "decided_at", "updated_at", "previous_version"])
    _audit("alias.promoted", request, actor,
           before={"version": previous.version if previous else None},
           after={"approved_by": [r.reviewer.get_username() for r in approvals],
                  "sha256": request.version.sha256, "onnx_sha256": request.version.onnx_sha256})
    notifications.notify_requester(request, event="approved")


def promotion_request_evaluate(*, request_id: int, actor=None) -> PromotionRequest | None:
    """Re-judge one request if it is still open (after a check or an analysis finished)."""
    with transaction.atomic():
        try:
            request = _lock(request_id)
        except PromotionRequest.DoesNotExist:
            return None
        if request.status not in OPEN_STATUSES:
            return request
        return _evaluate(request, actor)


def promotion_requests_evaluate_for_version(*, version_id: int) -> None:
    ids = list(PromotionRequest.objects.filter(version_id=version_id, status__in=OPEN_STATUSES)
               .values_list("pk", flat=True))
    for request_id in ids:
        promotion_request_evaluate(request_id=request_id)


# --- Requests -------------------------------------------------------------------------------


def promotion_request_create(*, model: RegisteredModel, version: ModelVersion, alias: Any,
                             justification: Any, user) -> PromotionRequest:
    role = role_for(user, model.project)
    if role is None or role < Role.EDITOR:
        raise PermissionDenied("Asking for a promotion needs the editor role or above.")
    alias = registry_services.alias_name_clean(alias)
    justification = _text(justification, "justification", required=True)
    if version.model_id != model.pk:
        raise ValidationError({"version": "That version belongs to another model."})
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().select_related("project").get(pk=model.pk)
        if not model.is_protected(alias):
            raise ValidationError({"alias": f"'{alias}' is not a protected alias of {model.name}: set it "
                                            "directly, no promotion is needed."})
        current = champion_version(model, alias)
        if current is not None and current.pk == version.pk:
            raise ValidationError({"version": f"'{alias}' already points at v{version.version}."})
        request = PromotionRequest.objects.create(
            model=model, version=version, alias=alias, requester=user, justification=justification,
            status=PromotionStatus.CHECKS_RUNNING)
        request.model = model
        _evaluate(request, user, announce=False)
        _audit("promotion.requested", request, user, after={"justification": justification,
                                                            "reasons": request.reasons})
        # A newer request for the same alias replaces the older ones still open.
        older = list(PromotionRequest.objects.select_for_update()
                     .filter(model=model, alias=alias, status__in=OPEN_STATUSES).exclude(pk=request.pk))
        for old in older:
            before = old.status
            old.status, old.superseded_by = PromotionStatus.SUPERSEDED, request
            old.updated_at = old.decided_at = timezone.now()
            old.save(update_fields=["status", "superseded_by", "updated_at", "decided_at"])
            old.model = model
            _audit("promotion.superseded", old, user, before={"status": before},
                   after={"superseded_by": request.pk})
        # Reviewers hear of every request at once, even while its checks run: they can read the
        # justification and lineage before the audit finishes.
        notifications.notify_reviewers(request, event="review_requested")
        if request.status == PromotionStatus.BLOCKED:
            notifications.notify_requester(request, event="blocked")
    return request


def promotion_review(*, request: PromotionRequest, user, decision: Any, comment: Any) -> Review:
    if decision not in ReviewDecision.values:
        raise ValidationError({"decision": "Give one of " + ", ".join(ReviewDecision.values) + "."})
    comment = _text(comment, "comment", required=decision in (ReviewDecision.REJECT,
                                                                 ReviewDecision.REQUEST_CHANGES))
    with transaction.atomic():
        request = _lock(request.pk)
        refusal = review_refusal(request=request, user=user)
        if refusal:
            raise PermissionDenied(refusal)
        if request.status not in OPEN_STATUSES:
            raise Conflict(f"This request is {request.get_status_display()}; it takes no more reviews.")
        version = request.version
        review = Review.objects.create(request=request, reviewer=user, decision=decision, comment=comment,
                                       version_sha256=version.sha256,
                                       version_onnx_sha256=version.onnx_sha256 or "")
        _audit("promotion.reviewed", request, user,
               after={"decision": decision, "comment": comment, "sha256": version.sha256,
                      "onnx_sha256": version.onnx_sha256})
        if decision == ReviewDecision.REJECT:
            now = timezone.now()
            request.status, request.decided_at, request.updated_at = PromotionStatus.REJECTED, now, now
            request.save(update_fields=["status", "decided_at", "updated_at"])
            _audit("promotion.rejected", request, user, after={"comment": comment})
            notifications.notify_requester(request, event="rejected", comment=comment)
        elif decision == ReviewDecision.REQUEST_CHANGES:
            notifications.notify_requester(request, event="changes_requested", comment=comment)
            _evaluate(request, user)
        else:
            _evaluate(request, user)
    return review


def promotion_request_withdraw(*, request: PromotionRequest, user) -> PromotionRequest:
    with transaction.atomic():
        request = _lock(request.pk)
        role = role_for(user, request.model.project)
        if request.requester_id != user.pk and (role is None or role < Role.OWNER):
            raise PermissionDenied("Only the requester or a project owner can withdraw a request.")
        if request.status not in OPEN_STATUSES:
            raise Conflict(f"This request is {request.get_status_display()}; it cannot be withdrawn.")
        before = request.status
        now = timezone.now()
        request.status, request.decided_at, request.updated_at = PromotionStatus.WITHDRAWN, now, now
        request.save(update_fields=["status", "decided_at", "updated_at"])
        _audit("promotion.withdrawn", request, user, before={"status": before})
    return request


# --- Rollback -------------------------------------------------------------------------------


def promotion_rollback(*, model: RegisteredModel, alias: Any, user, justification: Any) -> PromotionRequest:
    """An owner puts a protected alias back where the last approved promotion found it.

    The rollback is a request of its own, approved by the owner's role and recorded; when the
    promotion undone was the alias's first, the alias is removed.
    """
    alias = registry_services.alias_name_clean(alias)
    justification = _text(justification, "justification", required=True)
    role = role_for(user, model.project)
    if role is None or role < Role.OWNER:
        raise PermissionDenied("Only a project owner can roll back a protected alias.")
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().select_related("project").get(pk=model.pk)
        current = champion_version(model, alias)
        if current is None:
            raise ValidationError({"alias": f"'{alias}' points at no version: nothing to roll back."})
        undone = PromotionRequest.objects.filter(model=model, kind=PromotionKind.ROLLBACK,
                                                 rolled_back__isnull=False).values("rolled_back_id")
        last = (PromotionRequest.objects.select_for_update()
                .filter(model=model, alias=alias, kind=PromotionKind.PROMOTE, status=PromotionStatus.APPROVED,
                        version=current)
                .exclude(pk__in=undone).order_by("-decided_at", "-id").first())
        if last is None:
            raise ValidationError({"alias": f"'{alias}' did not reach v{current.version} through an approved "
                                            "promotion: there is no approved state to return to."})
        target = last.previous_version
        now = timezone.now()
        rollback = PromotionRequest.objects.create(
            model=model, version=target, alias=alias, kind=PromotionKind.ROLLBACK, requester=user,
            justification=justification, status=PromotionStatus.APPROVED, previous_version=current,
            rolled_back=last, decided_at=now, updated_at=now)
        rollback.model = model
        if target is None:
            registry_services.alias_remove_protected(model=model, alias=alias, approval=rollback, actor=user)
        else:
            registry_services.alias_set_protected(model=model, alias=alias, version=target,
                                                  approval=rollback, actor=user)
        audit_record(action="alias.rolled_back", actor=user, object_type="governance.PromotionRequest",
                     object_id=rollback.pk, project_id=model.project_id,
                     before={"model": model.name, "alias": alias, "version": current.version},
                     after={"model": model.name, "alias": alias,
                            "version": target.version if target else None,
                            "undoes_request": last.pk, "justification": justification})
    return rollback

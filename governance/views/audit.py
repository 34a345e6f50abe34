"""Pages of the audit log and of protection change requests: thin, over governance services."""

from __future__ import annotations

import csv
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import project_for_user
from core.errors import DomainError, error_text
from governance import protection
from governance.audit import audit_events_csv_rows, audit_events_page, audit_events_query, audit_filters_clean
from governance.models import AuditEvent, ProtectionChangeRequest, ProtectionChangeStatus
from registry import selectors

FILTER_KEYS = ("action", "actor", "object_type", "object_id", "since", "until")


def _json_text(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else ""


def _distinct(events, field: str, limit: int) -> list[str]:
    # Ordered by the field itself: the model's default ordering (-id) would defeat DISTINCT.
    return list(events.order_by(field).values_list(field, flat=True).distinct()[:limit])


def _audit_page(request, *, project, all_projects: bool, csv_url: str):
    error = None
    try:
        filters = audit_filters_clean(request.GET)
    except ValidationError as exc:
        error, filters = error_text(exc), audit_filters_clean({})
    events = audit_events_query(project_id=project.pk if project else None, filters=filters,
                                all_projects=all_projects)
    rows, next_token = audit_events_page(events, filters)
    for event in rows:
        event.before_json = _json_text(event.before)
        event.after_json = _json_text(event.after)
    scope = AuditEvent.objects.all() if all_projects else AuditEvent.objects.filter(project_id=project.pk)
    query = request.GET.copy()
    query.pop("page_token", None)
    next_query = query.copy()
    if next_token:
        next_query["page_token"] = next_token
    return render(request, "governance/audit_log.html", {
        "project": project, "events": rows, "error": error,
        "form": {k: request.GET.get(k, "") for k in FILTER_KEYS},
        "known_actions": _distinct(scope, "action", 500),
        "known_types": _distinct(scope, "object_type", 200),
        "first_url": "?" + query.urlencode(),
        "next_url": "?" + next_query.urlencode() if next_token else None,
        "paged": "page_token" in filters, "csv_url": csv_url + "?" + query.urlencode(),
        "nav": "projects",
    })


def _csv_response(events, filename: str) -> StreamingHttpResponse:
    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in audit_events_csv_rows(events)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _filters_or_400(request) -> dict:
    try:
        return audit_filters_clean(request.GET)
    except ValidationError as exc:
        from core.api_errors import json_error_fields, validation_fields

        raise _Bad(json_error_fields(400, "invalid", error_text(exc), validation_fields(exc))) from None


class _Bad(Exception):
    def __init__(self, response):
        self.response = response


@login_required
def audit_log(request, slug: str):
    project = project_for_user(request.user, slug)
    return _audit_page(request, project=project, all_projects=False,
                       csv_url=reverse("audit:log-csv", args=[project.slug]))


@login_required
def audit_log_csv(request, slug: str):
    project = project_for_user(request.user, slug)
    try:
        filters = _filters_or_400(request)
    except _Bad as bad:
        return bad.response
    events = audit_events_query(project_id=project.pk, filters=filters)
    return _csv_response(events, f"audit-{project.slug}-{timezone.now():%Y%m%d-%H%M%S}.csv")


def _staff_only(user) -> None:
    # Like a project one cannot see: the page does not exist for anyone else.
    if not user.is_staff:
        raise Http404("No such page.")


@login_required
def audit_log_all(request):
    _staff_only(request.user)
    return _audit_page(request, project=None, all_projects=True, csv_url=reverse("audit:all-csv"))


@login_required
def audit_log_all_csv(request):
    _staff_only(request.user)
    try:
        filters = _filters_or_400(request)
    except _Bad as bad:
        return bad.response
    events = audit_events_query(project_id=None, filters=filters, all_projects=True)
    return _csv_response(events, f"audit-all-{timezone.now():%Y%m%d-%H%M%S}.csv")


# --- Protection change requests ---------------------------------------------------------------


def _protection_url(model) -> str:
    return reverse("audit:protection", args=[model.project.slug, model.name])


@login_required
def protection_page(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name)
    role = model.project.user_role
    changes = list(ProtectionChangeRequest.objects.filter(model=model)
                   .select_related("requested_by", "decided_by"))
    for change in changes:
        change.can_decide = (change.status == ProtectionChangeStatus.PENDING and role >= Role.REVIEWER
                             and change.requested_by_id != request.user.pk)
        change.can_withdraw = (change.status == ProtectionChangeStatus.PENDING
                               and change.requested_by_id == request.user.pk)
    pending = {c.alias for c in changes if c.status == ProtectionChangeStatus.PENDING}
    return render(request, "governance/audit_protection.html", {
        "project": model.project, "model": model, "changes": changes, "is_owner": role >= Role.OWNER,
        "requestable": [a for a in model.protected_aliases or [] if a not in pending],
        "crumb": "Protection", "nav": "models",
    })


@login_required
@require_POST
def protection_request(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
    try:
        protection.protection_change_request_create(
            model=model, user=request.user, alias=request.POST.get("alias", ""),
            justification=request.POST.get("justification", ""))
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Requested; a reviewer other than you decides it.")
    return redirect(_protection_url(model))


@login_required
@require_POST
def protection_decide(request, change_id: int):
    change = protection.protection_change_for_user(request.user, change_id)
    decision = request.POST.get("decision", "")
    try:
        change = protection.protection_change_request_decide(
            change=change, user=request.user, decision=decision, comment=request.POST.get("comment", ""))
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        if change.status == ProtectionChangeStatus.APPROVED:
            messages.success(request, f"Approved: '{change.alias}' is no longer protected.")
        else:
            messages.success(request, f"Rejected: '{change.alias}' stays protected.")
    return redirect(_protection_url(change.model))


@login_required
@require_POST
def protection_withdraw(request, change_id: int):
    change = protection.protection_change_for_user(request.user, change_id)
    try:
        protection.protection_change_request_withdraw(change=change, user=request.user)
    except DomainError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Withdrawn.")
    return redirect(_protection_url(change.model))

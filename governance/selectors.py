"""Read queries for promotion requests: one request a user may see, and the Reviews inbox."""

from __future__ import annotations

from django.db.models import Q

from accounts.models import Membership, Role
from accounts.permissions import require_role
from core.errors import NotFound
from governance.models import OPEN_STATUSES, PromotionRequest, Review

DECIDED = ("approved", "rejected", "withdrawn", "superseded")


def _base():
    return PromotionRequest.objects.select_related("model", "model__project", "version", "version__author",
                                                   "requester", "previous_version")


def request_for_user(user, request_id: int, min_role: Role = Role.VIEWER) -> PromotionRequest:
    """A request by id: 404 unless the user may see its project, 403 unless the role suffices."""
    request = _base().filter(pk=request_id).first()
    if request is None:
        raise NotFound("No such promotion request.")
    try:
        require_role(user, request.model.project, min_role)
    except NotFound:
        raise NotFound("No such promotion request.") from None
    return request


def _visible_projects(user, min_role: Role = Role.VIEWER):
    if user.is_staff:
        return None
    return Membership.objects.filter(user=user, role__gte=min_role).values("project_id")


def requests_waiting_for(user, limit: int = 100) -> list[PromotionRequest]:
    """Open requests this user may review and has not yet answered on the version's current files."""
    qs = _base().filter(status__in=OPEN_STATUSES).exclude(requester=user).exclude(version__author=user)
    projects = _visible_projects(user, Role.REVIEWER)
    if projects is not None:
        qs = qs.filter(model__project_id__in=projects)
    out = []
    for request in qs.order_by("created_at")[:limit * 2]:
        mine = (Review.objects.filter(request=request, reviewer=user).order_by("-created_at", "-id").first())
        if mine is not None and mine.decision == "approve" and mine.version_sha256 == request.version.sha256 \
                and mine.version_onnx_sha256 == (request.version.onnx_sha256 or ""):
            continue
        out.append(request)
    return out[:limit]


def models_to_promote(user, limit: int = 100):
    """Registered models in projects where the user may ask for a promotion (editor and above)."""
    from registry.models import RegisteredModel

    qs = RegisteredModel.objects.select_related("project").order_by("project__slug", "name")
    projects = _visible_projects(user, Role.EDITOR)
    if projects is not None:
        qs = qs.filter(project_id__in=projects)
    return list(qs[:limit])


def requests_made_by(user, limit: int = 50) -> list[PromotionRequest]:
    return list(_base().filter(requester=user).order_by("-created_at", "-id")[:limit])


def recent_decisions(user, limit: int = 30) -> list[PromotionRequest]:
    qs = _base().filter(status__in=DECIDED, decided_at__isnull=False)
    projects = _visible_projects(user)
    if projects is not None:
        qs = qs.filter(Q(model__project_id__in=projects))
    return list(qs.order_by("-decided_at", "-id")[:limit])

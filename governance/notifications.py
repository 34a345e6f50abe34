"""Telling people about promotion requests: in-app notices, email and an optional signed webhook.

The in-app rows are written inside the caller's transaction (they appear with the request or
not at all). Email and the webhook leave after commit, from a Celery task, so a slow mail
server or receiver never holds a web request or a lock.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership, Role
from core.webhooks import webhook_send
from governance.models import Notification, PromotionRequest

logger = logging.getLogger(__name__)

MESSAGES = {
    "review_requested": "{requester} asks to move {model}@{alias} to v{version}: your review is requested.",
    "ready_for_review": "The checks of {model} v{version} ({alias}) passed: it is ready for your review.",
    "blocked": "Your request to move {model}@{alias} to v{version} is blocked: {reasons}",
    "approved": "{model}@{alias} now points at v{version}: your request was approved.",
    "rejected": "Your request to move {model}@{alias} to v{version} was rejected: {comment}",
    "changes_requested": ("A reviewer asks for changes to your request for {model}@{alias} v{version}: "
                          "{comment}"),
}


def reviewers_for(request: PromotionRequest) -> list:
    """Members who may approve: reviewer role or above, never the requester or the version's author."""
    excluded = {request.requester_id, request.version.author_id if request.version_id else None}
    members = (Membership.objects.filter(project_id=request.model.project_id, role__gte=Role.REVIEWER)
               .select_related("user").order_by("user__username"))
    return [m.user for m in members if m.user_id not in excluded and m.user.is_active]


def request_url(request: PromotionRequest) -> str:
    return reverse("governance:review", args=[request.pk])


def _message(request: PromotionRequest, event: str, comment: str = "") -> str:
    text = MESSAGES[event].format(
        requester=request.requester.get_username() if request.requester_id else "someone",
        model=request.model.name, alias=request.alias,
        version=request.version.version if request.version_id else "—",
        reasons="; ".join(request.reasons)[:300] or "a check failed", comment=comment[:300])
    return text[:500]


def _notify(request: PromotionRequest, users: list, event: str, comment: str = "") -> None:
    if not users:
        return
    message = _message(request, event, comment)
    rows = Notification.objects.bulk_create(
        [Notification(user=u, request=request, event=event, message=message) for u in users])
    ids = [n.pk for n in rows]
    request_id = request.pk

    def deliver() -> None:
        from governance.tasks import promotion_notify_task

        promotion_notify_task.delay(request_id, event, ids)

    transaction.on_commit(deliver)


def notify_reviewers(request: PromotionRequest, *, event: str) -> None:
    _notify(request, reviewers_for(request), event)


def notify_requester(request: PromotionRequest, *, event: str, comment: str = "") -> None:
    if request.requester_id:
        _notify(request, [request.requester], event, comment)


def notifications_deliver(*, request_id: int, event: str, notification_ids: list[int]) -> dict:
    """Email each notified user who has an address, and call the project's webhook once.

    Safe to run twice in the sense that matters: a receiver may see an event again (webhooks
    are at-least-once) but nothing is stored twice.
    """
    from governance.policies import policy_for_model

    request = (PromotionRequest.objects.select_related("model", "model__project", "version", "requester")
               .filter(pk=request_id).first())
    if request is None:
        return {"emails": 0, "webhook": None}
    notes = list(Notification.objects.filter(pk__in=notification_ids).select_related("user"))
    link = settings.SITE_URL.rstrip("/") + request_url(request)
    sent = 0
    for note in notes:
        if not note.user.email:
            continue
        try:
            sent += send_mail(
                subject=f"[Steward] {request.model.name}@{request.alias}: {event.replace('_', ' ')}",
                message=f"{note.message}\n\n{link}\n",
                from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[note.user.email])
        except Exception:  # noqa: BLE001 - one bad address or a down server must not stop the rest
            logger.exception("Could not email %s about promotion request %s", note.user.email, request_id)
    policy = policy_for_model(request.model)
    status = None
    if policy.webhook_url and policy.webhook_secret:
        status = webhook_send(url=policy.webhook_url, secret=policy.webhook_secret,
                              event=f"promotion.{event}", payload={
                                  "request_id": request.pk, "project": request.model.project.slug,
                                  "model": request.model.name, "alias": request.alias,
                                  "version": request.version.version if request.version_id else None,
                                  "status": request.status, "url": link,
                                  "recipients": [n.user.get_username() for n in notes]})
    return {"emails": sent, "webhook": status}


def notifications_unread(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()



"""Idempotency-Key requests: the work is done once per (user, key), a repeat gets the first answer.

Shared by every app whose API takes the header (runs, batches, monitors' prediction logs...);
stored answers are pruned after ``IDEMPOTENCY_KEEP_DAYS`` by a beat task (``core.tasks``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Conflict, IdempotencyKeyReused
from core.models import IdempotentRequest

IDEMPOTENCY_KEY_MAX = 200


def request_hash(body: Any) -> str:
    """sha256 of a parsed JSON body, the same however its keys were ordered or spaced."""
    try:
        text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer past 64 bits, which the standard library writes
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(text).hexdigest()


def idempotent(*, user, key: str | None, scope: str, body: Any, work) -> tuple[int, Any]:
    """Run ``work()`` once per (user, key); a repeat of the same request (``scope``
    and ``body``) answers what the first answered, another request with the key is refused.

    The stored answer commits in the same transaction as the work, so a retry
    after a lost response can never store the work twice.
    """
    if key is None:
        return work()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationError(
            {"Idempotency-Key": f"Must be 1-{IDEMPOTENCY_KEY_MAX} characters."}
        )
    digest = request_hash(body)

    def stored() -> tuple[int, Any] | None:
        record = IdempotentRequest.objects.filter(user=user, key=key).first()
        if record is None:
            return None
        if record.scope != scope:
            raise Conflict("This Idempotency-Key was already used for a different request.")
        if record.request_hash and record.request_hash != digest:
            raise IdempotencyKeyReused()
        return record.status_code, record.response

    # Most keys are new: the work is done first and the key's row stored with
    # it, without a lookup beforehand. For a repeat, the key's unique row makes
    # that insert fail (after waiting for a concurrent first request to
    # commit), the work rolls back with it, and the stored answer is given.
    try:
        with transaction.atomic():
            status_code, answer = work()
            IdempotentRequest.objects.create(
                user=user, key=key, scope=scope, request_hash=digest, status_code=status_code,
                response=answer,
            )
    except (IntegrityError, ValidationError, Conflict):
        # Also when the repeat's work itself is refused (a param it sets is now
        # logged): the first request's answer is the answer.
        previous = stored()
        if previous is None:
            raise
        return previous
    return status_code, answer


def idempotent_requests_prune(*, now: dt.datetime | None = None) -> int:
    """Delete stored answers older than IDEMPOTENCY_KEEP_DAYS; returns how many went.

    The default (7 days) is far longer than any client retries a request, so a retry never
    finds its answer gone.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.IDEMPOTENCY_KEEP_DAYS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted

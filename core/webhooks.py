"""Signed outgoing webhooks, shared by governance (review requests) and monitoring (alerts).

The body is JSON; ``X-Steward-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes with the receiver's shared secret, and ``X-Steward-Event`` names the event, so a
receiver verifies with ``hmac.compare_digest`` before trusting anything in the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import requests

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5


def webhook_signature(*, body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_send(*, url: str, secret: str, event: str, payload: dict[str, Any]) -> int | None:
    """POST one event; returns the HTTP status, or None when the receiver could not be reached.

    Never raises for the receiver's faults: a down receiver must not fail the job that sends.
    """
    body = json.dumps({"event": event, "payload": payload}, sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Steward-Event": event,
        "X-Steward-Signature": webhook_signature(body=body, secret=secret),
    }
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        logger.warning("Webhook %s to %s failed: %s", event, url, exc)
        return None
    return response.status_code

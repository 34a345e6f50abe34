"""Signed outgoing webhooks, shared by governance (review requests) and monitoring (alerts).

The body is JSON; ``X-Steward-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes with the receiver's shared secret, and ``X-Steward-Event`` names the event, so a
receiver verifies with ``hmac.compare_digest`` before trusting anything in the payload.

Webhook URLs are user input, so a webhook must not become a way into internal services:
only http(s), and the host must resolve to public addresses only (no loopback, private,
link-local, shared, reserved or multicast address). The address is checked when a URL is
accepted, again on every send after DNS resolution, and once more on the connected socket
itself, so a name that resolves to a public address at the check and to a private one at
connect time (DNS rebinding) is refused too. ``WEBHOOK_ALLOW_PRIVATE`` turns this off for
installations whose receivers live on their own network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5


class WebhookRefused(ValueError):
    """The URL may not receive webhooks (scheme, or an address that is not public)."""


def address_allowed(address: str) -> bool:
    if getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False):
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_unspecified)


def webhook_url_check(url: str) -> None:
    """Raise WebhookRefused unless ``url`` is http(s) on a host whose every address is allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused("Not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("Only http:// and https:// URLs with a host can receive webhooks.")
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookRefused(f"The host {parts.hostname!r} does not resolve.") from None
    for info in infos:
        if not address_allowed(info[4][0]):
            raise WebhookRefused(f"{parts.hostname!r} resolves to {info[4][0]}, a loopback, private or "
                                 "link-local address; webhooks go to public addresses only.")


class _CheckedConnection:
    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not address_allowed(peer):
            sock.close()
            raise WebhookRefused(f"Connected to {peer}, which is not a public address; refused.")
        return sock


class _HTTPConnection(_CheckedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_CheckedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    """Checks the address of every socket it connects, after the name was resolved."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the checked socket is the receiver's
    adapter = _CheckedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def webhook_signature(*, body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_send(*, url: str, secret: str, event: str, payload: dict[str, Any]) -> int | None:
    """POST one event; returns the HTTP status, or None when the receiver could not be reached
    or its URL is refused (see the module's docstring).

    Never raises for the receiver's faults: a down receiver must not fail the job that sends.
    """
    body = json.dumps({"event": event, "payload": payload}, sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Steward-Event": event,
        "X-Steward-Signature": webhook_signature(body=body, secret=secret),
    }
    try:
        webhook_url_check(url)
        with _session() as session:
            response = session.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                    allow_redirects=False)
    except (requests.RequestException, WebhookRefused) as exc:
        logger.warning("Webhook %s to %s failed: %s", event, url, exc)
        return None
    return response.status_code

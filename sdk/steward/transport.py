"""HTTP with retries: connection errors, 5xx and 429 are retried, 4xx raise at once.

Every request the SDK retries is safe to repeat: batches carry an
Idempotency-Key, runs are created with a client-chosen id, PATCH and PUT
overwrite, GET reads.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import requests

from steward import __version__
from steward.errors import ServerUnavailableError, api_error

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Transport:
    """One ``requests.Session`` bound to a server and a token; use one per thread."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        retry_timeout: float = 15.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_timeout = retry_timeout
        self.timeout = (connect_timeout, read_timeout)
        self.cancel = cancel
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"steward-sdk/{__version__}"
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | Path | Callable[[], IO[bytes]] | None = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        retry_timeout: float | None = None,
    ) -> requests.Response:
        """Send a request, retrying transient failures with exponential backoff and full jitter.

        Raises an :class:`~steward.errors.ApiError` subclass for a 4xx answer
        and :class:`~steward.errors.ServerUnavailableError` when the retry
        budget (``retry_timeout`` seconds) is spent.
        """
        url = self.url + path
        headers = dict(headers or {})
        data: Any = None
        if json_body is not None:
            # NaN/Infinity were turned into strings already; allow_nan=False keeps it honest.
            data = json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode()
            headers.setdefault("Content-Type", "application/json")
        budget = self.retry_timeout if retry_timeout is None else retry_timeout
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            opened = None
            if body is not None:
                if isinstance(body, (bytes, bytearray)):
                    data = body
                elif isinstance(body, Path):
                    data = opened = body.open("rb")
                else:
                    data = opened = body()
            try:
                response = self.session.request(
                    method, url, data=data, params=params, headers=headers,
                    timeout=self.timeout, stream=stream,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: str = f"{type(exc).__name__}: {exc}"
                wait_hint = None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code != 429 and response.status_code < 500:
                    try:
                        payload = response.json()
                    except ValueError:
                        payload = None
                    raise api_error(response.status_code, payload, method=method, path=path,
                                    text=response.text)
                failure = f"HTTP {response.status_code}"
                wait_hint = _retry_after(response)
                response.close()
            finally:
                if opened is not None:
                    opened.close()
            attempt += 1
            delay = wait_hint if wait_hint is not None else random.uniform(
                0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
            )
            if time.monotonic() + delay > deadline:
                raise ServerUnavailableError(
                    f"{method} {url} failed after {attempt} attempt(s) in {budget:g}s: {failure}"
                )
            if self.cancel is not None:
                if self.cancel.wait(delay):
                    raise ServerUnavailableError(f"{method} {url} cancelled while retrying: {failure}")
            else:
                time.sleep(delay)

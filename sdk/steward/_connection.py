"""Where a run's requests go: the server while it answers, the on-disk spool while it does not.

A :class:`Connection` belongs to one run. It creates the run (and a missing
project), knows whether the run is online, writes what cannot be sent to the
spool, probes the server while offline and replays the run's spool in order
once it answers again, and sends earlier runs' spool in a background thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from steward.config import Settings
from steward.errors import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerUnavailableError,
)
from steward.spool import Spool, SyncReport, artifact_url, replay_run, sync
from steward.transport import Transport

log = logging.getLogger("steward")

SPOOL_SYNC_GRACE = 60.0  # seconds a run's end waits for the earlier runs' spool to go out


# The SDK's own threads. A refusal raised in one of them would end it and never reach the user.
BACKGROUND_THREADS = frozenset({"steward-sender", "steward-system-metrics", "steward-spool-sync"})


class DeferredErrors:
    """Refusals the server answered to background requests, kept until the user's thread asks.

    :meth:`raise_first` raises only in a thread of the user's: called from one
    of the SDK's own threads it does nothing and keeps the refusal for the
    user's next call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Read without the lock on the logging hot path (a list's truth is one atomic read);
        # emptied in place, so a reference to it stays valid.
        self.pending: list[ApiError] = []

    def add(self, exc: ApiError) -> None:
        with self._lock:
            self.pending.append(exc)

    def raise_first(self) -> None:
        """Raise the oldest refusal and forget them all (each is logged when it happens)."""
        if not self.pending or threading.current_thread().name in BACKGROUND_THREADS:
            return
        with self._lock:
            if not self.pending:
                return
            first = self.pending[0]
            self.pending.clear()
        raise first


def project_ensure(create_project: Callable[[str], Any], slug: str) -> None:
    """Create the missing project ``slug`` with ``create_project`` (the caller becomes its owner).

    Raises:
        NotFoundError: naming the project, when it cannot be created: the
            caller may not create projects, the slug is not valid, or a
            project of that slug exists that the caller cannot see.
    """
    try:
        create_project(slug)
    except (InvalidRequestError, PermissionDeniedError) as exc:
        if isinstance(exc, InvalidRequestError) and "already exists" in exc.message:
            reason = ("a project with this slug exists but you are not a member of it; "
                      "ask its owner for access")
        else:
            reason = exc.message
        raise NotFoundError(
            404, "not_found",
            f"Project '{slug}' does not exist for you, and it could not be created: {reason}",
            {"project": reason}, method=exc.method, path=exc.path,
        ) from exc
    log.warning("steward: created the project '%s' (you are its owner).", slug)


class Connection:
    """One run's link to the server: online state, spool, reconnection and the earlier runs' sync."""

    def __init__(self, settings: Settings, run_id: str, errors: DeferredErrors) -> None:
        self.settings = settings
        self.run_id = run_id
        self.errors = errors
        self.spool = Spool(settings.spool_dir, settings.url)
        self.spooled = 0
        self.sync_report: SyncReport | None = None
        self.created = False
        # Written by the user's thread (start, artifacts) and the sender thread (batches, probes).
        self._lock = threading.Lock()
        self._online = not settings.offline
        self._warned_offline = False
        self._next_probe = 0.0
        self._sync_stop = threading.Event()
        self._sync_thread: threading.Thread | None = None

        def transport(retry_timeout: float, cancel: threading.Event | None = None) -> Transport:
            return Transport(settings.url, settings.token, retry_timeout=retry_timeout,
                             connect_timeout=settings.connect_timeout,
                             read_timeout=settings.read_timeout, cancel=cancel)

        # One session per thread: the user's, the sender's, the probe's and the spool sync's.
        self.main = transport(settings.retry_timeout)
        self.sender = transport(settings.retry_timeout)
        self._probe = transport(min(1.0, settings.retry_timeout))
        self._sync_transport = transport(settings.retry_timeout, cancel=self._sync_stop)

    @property
    def online(self) -> bool:
        return self._online

    def close(self) -> None:
        for transport in (self.main, self.sender, self._probe, self._sync_transport):
            transport.close()

    # Starting the run (the user's thread)

    def fetch_run(self) -> dict[str, Any] | None:
        """The run as the server has it, None if there is no such run; raises while unreachable."""
        try:
            return self.main.request("GET", f"/api/v1/runs/{self.run_id}/").json()
        except NotFoundError:
            return None

    def create_run(self, project: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create the run on the server (a missing project first), or spool its creation while offline."""
        if self._online:
            url = f"/api/v1/projects/{quote(project, safe='')}/runs/"
            try:
                try:
                    created = self.main.request("POST", url, json_body=body).json()
                except NotFoundError:
                    project_ensure(self._create_project, project)
                    created = self.main.request("POST", url, json_body=body).json()
                self.mark_created()
                return created
            except ServerUnavailableError as exc:
                self.go_offline(exc)
        # The run gets created when the spool is replayed; its client-side id makes that safe to repeat.
        self.spool_write("create", {"project": project, "body": body})
        return None

    def mark_created(self) -> None:
        """The run exists on the server: created now, resumed, or created by the spool's replay."""
        with self._lock:
            self.created = True

    def _create_project(self, slug: str) -> None:
        self.main.request("POST", "/api/v1/projects/", json_body={"slug": slug, "name": slug})

    # Online and offline

    def go_offline(self, exc: Exception | None) -> None:
        with self._lock:
            self._online = False
            self._next_probe = time.monotonic() + self.settings.probe_interval
            warn = not self._warned_offline
            self._warned_offline = True
        if warn:
            log.warning(
                "steward: %s is unreachable (%s); run %s keeps logging to the spool in %s. "
                "It is sent when the server answers again, or by `steward sync`.",
                self.settings.url, exc, self.run_id, self.spool.root,
            )

    def refused_token(self, exc: AuthenticationError) -> None:
        """A 401 in the background: keep everything in the spool for `steward login` + `steward sync`."""
        with self._lock:
            self._online = False
            self._next_probe = math.inf
        self.record_error(exc)

    def record_error(self, exc: ApiError) -> None:
        log.error("steward: run %s: the server refused logged data: %s", self.run_id, exc)
        self.errors.add(exc)

    def spool_write(self, kind: str, record: dict[str, Any], data: bytes | Path | None = None) -> None:
        self.spool.write(self.run_id, kind, record, data)
        with self._lock:
            self.spooled += 1

    def reconnect_if_due(self) -> None:
        """While offline, every ``probe_interval`` s replay this run's spool; online again once it is empty.

        Called by the sender thread only, before each round of sending, so
        the spool's records always go out before anything logged later.
        """
        if self._online or self.settings.offline or time.monotonic() < self._next_probe:
            return
        report = SyncReport()
        for _ in range(3):
            try:
                if not replay_run(self.spool, self._probe, self.run_id, report):
                    break
            except (AuthenticationError, PermissionDeniedError) as exc:
                self.record_error(exc)
                with self._lock:
                    self._next_probe = math.inf
                return
            if not self.spool.records(self.run_id):
                with self._lock:
                    self._online = True
                    self.created = True
                log.warning("steward: %s answers again; run %s is back online.",
                            self.settings.url, self.run_id)
                return
        with self._lock:
            self._next_probe = time.monotonic() + self.settings.probe_interval

    def warn_if_spooled(self) -> None:
        """At the run's end, while offline: say how much of it waits in the spool, and how to send it."""
        if self.spooled and not self._online:
            log.warning(
                "steward: run %s ended with %d request(s) in the spool %s; run `steward sync` to send them.",
                self.run_id, len(self.spool.records(self.run_id)), self.spool.root,
            )

    # Artifacts (either thread)

    def put_artifact(self, path: str, data: bytes | Path, content_type: str,
                     transport: Transport) -> dict[str, Any] | None:
        """Store an artifact; None when it went to the spool instead."""
        if self._online:
            try:
                response = transport.request(
                    "PUT", artifact_url(self.run_id, path), body=data, headers={"Content-Type": content_type}
                )
                return response.json() if response.content else {}
            except ServerUnavailableError as exc:
                self.go_offline(exc)
        self.spool_write("artifact", {"path": path, "content_type": content_type}, data)
        return None

    # The earlier runs' spool

    def start_sync(self) -> None:
        if self._online and self.spool.run_ids():
            self._sync_thread = threading.Thread(target=self._sync_others, name="steward-spool-sync",
                                                 daemon=True)
            self._sync_thread.start()

    def _sync_others(self) -> None:
        try:
            self.sync_report = sync(self.spool, self._sync_transport, stop=self._sync_stop,
                                    skip={self.run_id})
            if self.sync_report.sent:
                log.info("steward: sent %d spooled record(s) of earlier runs.", self.sync_report.sent)
        except Exception:  # noqa: BLE001 - a failed background sync must not disturb the run
            log.exception("steward: syncing the spool failed")

    def finish_sync(self, grace: float = SPOOL_SYNC_GRACE) -> None:
        if self._sync_thread is not None:
            # Let the earlier runs' records finish sending, within reason; the rest waits for next time.
            self._sync_thread.join(grace)
            self._sync_stop.set()
            self._sync_thread.join()

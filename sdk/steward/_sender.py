"""The ``steward-sender`` thread: takes what a run buffered and posts it in batches.

It wakes when a batch is full or every ``flush_interval`` seconds, sends the
artifacts queued at start, then params, tags and up to ``batch_size`` metric
points per request, each with a fresh Idempotency-Key. A refusal (4xx) is
kept on disk with its reason and handed to :class:`DeferredErrors`, for the
user's thread to raise; an unreachable server sends the batch to the spool.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from steward._connection import Connection
from steward.errors import ApiError, AuthenticationError, ConflictError, ServerUnavailableError

log = logging.getLogger("steward")

MAX_BATCH_PARAMS = 1000
MAX_BATCH_TAGS = 1000

MetricPoint = tuple[str, "float | str", int, int]  # key, value, step, timestamp (ms)


class Sender:
    """A run's buffers and the thread that empties them."""

    def __init__(self, connection: Connection, *, batch_size: int, flush_interval: float) -> None:
        self._conn = connection
        self._run_id = connection.run_id
        self.batch_size = batch_size
        self._flush_interval = flush_interval
        # Appended to by the user's and the system-metrics thread, emptied by the sender:
        # deque.append and deque.popleft are atomic, so the hot path takes no lock.
        self.metrics: deque[MetricPoint] = deque()
        self._artifacts: deque[tuple[str, bytes | Path, str]] = deque()
        self._lock = threading.Lock()  # guards the pending params and tags
        self._pending_params: dict[str, str] = {}
        self._pending_tags: dict[str, str] = {}
        self.wake = threading.Event()
        self._cv = threading.Condition()  # guards the flush generations and the stop request
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        # Set before the last drain: what is queued after it would never be sent (see Run.log_metric).
        self.sealed = False
        self._end_body: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._main, name="steward-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # Filling the buffers (any thread)

    def add_points(self, points: list[MetricPoint]) -> None:
        """Queue metric points; never raises (the system-metrics thread calls this)."""
        self.metrics.extend(points)
        if len(self.metrics) >= self.batch_size:
            self.wake.set()

    def add_params(self, params: dict[str, str]) -> bool:
        """Queue params; False once the last drain has begun (they would never be sent)."""
        with self._lock:
            if self.sealed:
                return False
            self._pending_params.update(params)
        return True

    def add_tags(self, tags: dict[str, str]) -> bool:
        """Queue tags; False once the last drain has begun (they would never be sent)."""
        with self._lock:
            if self.sealed:
                return False
            self._pending_tags.update(tags)
        return True

    def take_back(self, point: MetricPoint) -> bool:
        """Remove a point queued after the seal; False if the last drain took it (it is sent)."""
        try:
            self.metrics.remove(point)
        except ValueError:
            return False
        return True

    def add_artifact(self, path: str, data: bytes | Path, content_type: str) -> None:
        self._artifacts.append((path, data, content_type))

    # Waiting for it (the user's thread)

    def flush(self, timeout: float | None) -> None:
        """Block until everything queued before this call is sent or spooled."""
        if not self._thread.is_alive():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._flush_requested += 1
            generation = self._flush_requested
            self.wake.set()
            while self._flush_done < generation and self._thread.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"Run {self._run_id}: flush did not finish in {timeout}s.")
                self._cv.wait(0.25)

    def stop(self, end_body: dict[str, Any]) -> None:
        """Send what is left, then the run's final status, and end the thread."""
        with self._cv:
            self._end_body = end_body
            self._stopping = True
        self.wake.set()
        self._thread.join()

    # The thread

    def _main(self) -> None:
        while True:
            self.wake.wait(self._flush_interval)
            self.wake.clear()
            with self._cv:
                generation = self._flush_requested
                stopping = self._stopping
            if stopping:
                with self._lock:
                    self.sealed = True
            try:
                self._send_pending()
                if stopping:
                    self._send_end()
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything and report it
                log.exception("steward: the background sender failed")
                if isinstance(exc, ApiError):
                    self._conn.errors.add(exc)
            with self._cv:
                self._flush_done = generation
                self._cv.notify_all()
            if stopping:
                return

    def _send_pending(self) -> None:
        self._conn.reconnect_if_due()
        while self._artifacts:
            path, data, content_type = self._artifacts.popleft()
            self._conn.put_artifact(path, data, content_type, self._conn.sender)
        while True:
            body = self._take_batch()
            if body is None:
                return
            self._deliver(body)

    def _take_batch(self) -> dict[str, list] | None:
        with self._lock:
            params = self._pending_params
            tags = self._pending_tags
            if len(params) > MAX_BATCH_PARAMS:
                params = {k: self._pending_params.pop(k) for k in list(params)[:MAX_BATCH_PARAMS]}
            else:
                self._pending_params = {}
            if len(tags) > MAX_BATCH_TAGS:
                tags = {k: self._pending_tags.pop(k) for k in list(tags)[:MAX_BATCH_TAGS]}
            else:
                self._pending_tags = {}
        buffer = self.metrics
        count = min(len(buffer), self.batch_size)
        pop = buffer.popleft
        metrics = []
        for _ in range(count):
            key, value, step, ts = pop()
            metrics.append({"key": key, "value": value, "step": step, "timestamp": ts})
        if not (params or tags or metrics):
            return None
        return {
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "metrics": metrics,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }

    def _deliver(self, body: dict[str, list]) -> None:
        conn = self._conn
        key = str(uuid.uuid4())
        if conn.online:
            try:
                conn.sender.request(
                    "POST", f"/api/v1/runs/{self._run_id}/batch/", json_body=body,
                    headers={"Idempotency-Key": key},
                )
                return
            except ServerUnavailableError as exc:
                conn.go_offline(exc)
            except AuthenticationError as exc:
                conn.refused_token(exc)  # kept in the spool below, for `steward login` + `steward sync`
            except ConflictError as exc:
                # Only params can conflict: keep them aside and still deliver the metrics and tags.
                rest = {"params": [], "metrics": body["metrics"], "tags": body["tags"]}
                rejected = {"params": body["params"], "metrics": [], "tags": []}
                conn.spool.write_rejected(self._run_id, "batch", {"key": key, "body": rejected}, exc)
                conn.record_error(exc)
                if body["params"] and (rest["metrics"] or rest["tags"]):
                    self._deliver(rest)
                return
            except ApiError as exc:
                conn.spool.write_rejected(self._run_id, "batch", {"key": key, "body": body}, exc)
                conn.record_error(exc)
                return
        conn.spool_write("batch", {"key": key, "body": body})

    def _send_end(self) -> None:
        conn = self._conn
        body = self._end_body
        if body is None:
            return
        if conn.online:
            try:
                conn.sender.request("PATCH", f"/api/v1/runs/{self._run_id}/", json_body=body)
                return
            except ServerUnavailableError as exc:
                conn.go_offline(exc)
            except AuthenticationError as exc:
                conn.refused_token(exc)
            except ApiError as exc:
                conn.record_error(exc)
                return
        conn.spool_write("update", {"body": body})

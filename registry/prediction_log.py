"""Every served prediction is recorded, in batches written off the request path.

A request appends one entry to an in-process queue; a daemon thread writes
what has queued every ``PREDICTION_LOG_FLUSH_SECONDS`` (or as soon as
``PREDICTION_LOG_BATCH_ROWS`` rows wait), one COPY per batch on PostgreSQL
(see ``prediction_log_writer``), one record per request (see ``PredictionLog``).
Entries hold the request's arrays as they were; they become JSON in that
thread, not on the request path.
The process flushes once more at exit. A batch the database refuses goes back
to the queue for the next flush; if the database stays down the queue is
capped at ``PREDICTION_LOG_MAX_QUEUED_ROWS`` and the oldest entries are
dropped (and counted, on ``/healthz``): losing some monitoring rows is better
than a server that runs out of memory.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque

from django.conf import settings
from django.db import close_old_connections, connection, connections

from registry.prediction_log_writer import Entry, prediction_log_writer

logger = logging.getLogger(__name__)


_queue: deque[Entry] = deque()
_lock = threading.Lock()
_wake = threading.Event()
_queued_rows = 0
_dropped_rows = 0
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def _cap_locked() -> None:
    """Drop the oldest entries past PREDICTION_LOG_MAX_QUEUED_ROWS (the newest always stays)."""
    global _queued_rows, _dropped_rows
    while _queued_rows > settings.PREDICTION_LOG_MAX_QUEUED_ROWS and len(_queue) > 1:
        old = _queue.popleft()
        _queued_rows -= old.rows
        _dropped_rows += old.rows


def prediction_log_enqueue(entry: Entry) -> None:
    global _queued_rows
    with _lock:
        _queue.append(entry)
        _queued_rows += entry.rows
        _cap_locked()
        big_enough = _queued_rows >= settings.PREDICTION_LOG_BATCH_ROWS
    if settings.PREDICTION_LOG_BACKGROUND:
        _thread_ensure()
        if big_enough:
            _wake.set()


def _drain() -> list[Entry]:
    global _queued_rows
    with _lock:
        entries = list(_queue)
        _queue.clear()
        _queued_rows = 0
    return entries


def _requeue(entries: list[Entry]) -> None:
    """Put a batch that could not be written back in front of what queued meanwhile."""
    global _queued_rows
    with _lock:
        _queue.extendleft(reversed(entries))
        _queued_rows += sum(entry.rows for entry in entries)
        _cap_locked()


def prediction_log_write(entries: list[Entry]) -> int:
    """Write entries now, in the caller's transaction (predictions logged through the API for a
    model served elsewhere), instead of through the background queue."""
    return prediction_log_writer().entries_write(entries)


def prediction_log_flush() -> int:
    """Write everything queued now; returns how many predictions (input rows) were written.

    If the database refuses, the batch goes back to the queue (oldest dropped past the cap) and
    the next flush tries again, so a database that is down for a while loses nothing that fits.
    """
    entries = _drain()
    if not entries:
        return 0
    try:
        return prediction_log_writer().entries_write(entries)
    except Exception:  # noqa: BLE001 - logging must never take serving down
        logger.warning("Could not write %d prediction log entries; they wait for the next flush.",
                       len(entries), exc_info=True)
        # A broken connection is closed, so the next flush opens a new one.
        connection.close_if_unusable_or_obsolete()
        _requeue(entries)
        return 0


def prediction_log_dropped() -> int:
    return _dropped_rows


def prediction_log_stats() -> dict[str, int]:
    """What /healthz reports: rows waiting to be written and rows dropped past the cap."""
    with _lock:
        return {"queued_rows": _queued_rows, "dropped_rows": _dropped_rows}


def _loop() -> None:
    interval = settings.PREDICTION_LOG_FLUSH_SECONDS
    while True:
        _wake.wait(interval)
        _wake.clear()
        close_old_connections()
        prediction_log_flush()


def _thread_ensure() -> None:
    global _thread, _thread_pid
    import os

    # A forked worker inherits the variable but not the thread.
    if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _thread = threading.Thread(target=_loop, name="prediction-log", daemon=True)
        _thread_pid = os.getpid()
        _thread.start()


@atexit.register
def _flush_at_exit() -> None:
    if _queue:
        try:
            prediction_log_flush()
        finally:
            connections.close_all()

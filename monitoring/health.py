"""Operational health of served versions: requests, rows/s, latency percentiles and error rate.

Serving calls ``health_record`` for every request that reached a version (registry.serving's
observer hook). It only counts in memory, per (version, minute), with a latency histogram of
fixed log-spaced buckets; a daemon thread adds the counts to ``ServingMinute`` rows every few
seconds (``health_flush``), off the request path, as the prediction log is written.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import os
import threading
import time
from collections import defaultdict

import numpy as np
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from monitoring.models import Monitor, ServingMinute
from monitoring.windows import alias_intervals
from registry.models import PredictionLog

logger = logging.getLogger(__name__)

# Bucket edges in seconds: 0.1 ms to 30 s, 12 per decade (about 21 % apart), so a percentile
# read from the histogram is within that of the true one.
LATENCY_EDGES = np.geomspace(1e-4, 30, 67).tolist()
FLUSH_SECONDS = 5.0

_lock = threading.Lock()
_counts: dict[tuple[int, int], list] = {}
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def _new() -> list:
    return [0, 0, 0, 0, [0] * (len(LATENCY_EDGES) + 1)]


def health_record(version_id: int, rows: int, seconds: float, outcome: str) -> None:
    """Count one served request (called on the request path: memory only)."""
    key = (version_id, int(time.time() // 60))
    bucket = bisect.bisect_right(LATENCY_EDGES, seconds)
    with _lock:
        entry = _counts.get(key)
        if entry is None:
            entry = _counts[key] = _new()
        entry[0] += 1
        entry[1] += rows
        if outcome == "refused":
            entry[2] += 1
        elif outcome == "failed":
            entry[3] += 1
        entry[4][bucket] += 1
    if settings.PREDICTION_LOG_BACKGROUND:
        _thread_ensure()


def health_flush() -> int:
    """Add what was counted to the database; returns how many minute rows were touched."""
    with _lock:
        counts = dict(_counts)
        _counts.clear()
    for (version_id, minute), (requests, rows, refused, failed, latency) in counts.items():
        at = dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC)
        with transaction.atomic():
            # Locked, as several processes add to the same minute.
            row, _ = ServingMinute.objects.select_for_update().get_or_create(
                model_version_id=version_id, minute=at, defaults={"latency": [0] * len(latency)}
            )
            row.requests += requests
            row.rows += rows
            row.refused += refused
            row.failed += failed
            row.latency = [a + b for a, b in zip(row.latency or [0] * len(latency), latency, strict=True)]
            row.save()
    return len(counts)


def _loop() -> None:
    while True:
        threading.Event().wait(FLUSH_SECONDS)
        close_old_connections()
        try:
            health_flush()
        except Exception:  # noqa: BLE001 - health counts must never take serving down
            logger.exception("Could not write serving health counts; they are dropped.")


def _thread_ensure() -> None:
    global _thread, _thread_pid
    # A forked worker inherits the variable but not the thread.
    if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _thread = threading.Thread(target=_loop, name="serving-health", daemon=True)
        _thread_pid = os.getpid()
        _thread.start()


def _percentile(histogram: np.ndarray, q: float) -> float | None:
    total = histogram.sum()
    if not total:
        return None
    index = int(np.searchsorted(np.cumsum(histogram), q * total))
    # The bucket's upper edge (the last bucket is open: its lower edge).
    return LATENCY_EDGES[min(index, len(LATENCY_EDGES) - 1)]


def _intervals_q(monitor: Monitor, field: str, now: dt.datetime) -> Q:
    q = Q()
    for version_id, begin, end in alias_intervals(monitor, until=now):
        part = Q(model_version_id=version_id, **{f"{field}__lt": end})
        if begin is not None:
            if field == "minute":
                # Counts are kept per whole minute: the minute the alias moved in counts for both.
                begin = begin.replace(second=0, microsecond=0)
            part &= Q(**{f"{field}__gte": begin})
        q |= part
    return q


def health_series(monitor: Monitor, *, since: dt.datetime) -> dict:
    """Per minute since ``since``, for the versions the alias pointed at: requests, rows/s,
    refused and failed requests, error rate and latency p50/p95/p99 (milliseconds)."""
    now = timezone.now()
    out: dict[str, list] = {
        key: []
        for key in (
            "minutes",
            "requests",
            "rows",
            "rows_per_second",
            "refused",
            "failed",
            "error_rate",
            "p50_ms",
            "p95_ms",
            "p99_ms",
        )
    }
    q = _intervals_q(monitor, "minute", now)
    if not q:
        return out
    minutes: dict[dt.datetime, list] = defaultdict(lambda: [0, 0, 0, 0, None])
    for row in ServingMinute.objects.filter(q, minute__gte=since).order_by("minute"):
        entry = minutes[row.minute]
        entry[0] += row.requests
        entry[1] += row.rows
        entry[2] += row.refused
        entry[3] += row.failed
        latency = np.asarray(row.latency, dtype=np.int64)
        entry[4] = latency if entry[4] is None else entry[4] + latency
    if not minutes:
        # Traffic logged before the health counts existed (or written straight to the log).
        logged = (
            PredictionLog.objects.filter(_intervals_q(monitor, "created_at", now), created_at__gte=since)
            .annotate(at=TruncMinute("created_at"))
            .values("at")
            .annotate(requests=Count("id"), rows=Sum("rows"))
            .order_by("at")
        )
        for bucket in logged:
            minutes[bucket["at"]] = [bucket["requests"], bucket["rows"], 0, 0, None]
    for minute in sorted(minutes):
        requests, rows, refused, failed, latency = minutes[minute]
        out["minutes"].append(minute.isoformat())
        out["requests"].append(requests)
        out["rows"].append(rows)
        out["rows_per_second"].append(round(rows / 60, 3))
        out["refused"].append(refused)
        out["failed"].append(failed)
        out["error_rate"].append(round((refused + failed) / requests, 4) if requests else None)
        for q_name, q_value in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            value = _percentile(latency, q_value) if latency is not None else None
            out[q_name].append(round(value * 1000, 3) if value is not None else None)
    return out
